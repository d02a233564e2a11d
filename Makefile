# ngx_ai_guard: build, run and test.  `make run` and `make test` are the
# two commands a newcomer needs; everything else is reached from them.

NGX_SRC    ?= /usr/share/nginx/src
NGINX      ?= /usr/sbin/nginx
BUILD      := build
MODULE     := $(BUILD)/ngx_http_ai_guard_module.so
ECHO_SO    ?= /usr/lib/nginx/modules/ngx_http_echo_module.so

MODULE_SRCS := config ngx_ai_guard_module.c $(wildcard src/*.c src/*.h)

# The parts of src/ that use no nginx runtime: unit tests and fuzz targets
# link them directly.
PURE_SRCS  := $(wildcard $(addprefix src/ngx_http_ai_guard_, \
                keys.c request.c request_fields.c usage.c limit.c price.c \
                str.c date.c \
                batch.c jlog.c jwt.c jwks.c jwt_json.c json.c canon.c pii.c \
                rules_file.c literals.c ac.c vscan.c norm.c admin_body.c \
                rewrite.c slots.c))
PURE_LIBS  := -lyajl -lcrypto -lpcre2-8
PURE_OBJS  := $(patsubst src/%.c,$(BUILD)/unit/obj/%.o,$(PURE_SRCS))

UNIT_SRCS  := $(wildcard t/unit/*_test.c)
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
UNIT_CC    ?= gcc
UNIT_FLAGS := -std=gnu99 -Wall -Wextra -Wno-unused-parameter -Werror -O1 -g -Isrc -It/unit \
              -fsanitize=address,undefined -fno-omit-frame-pointer

FUZZ_SRCS  := $(wildcard fuzz/*.c)
FUZZ_BINS  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_FLAGS := -g -O1 -Isrc -fsanitize=fuzzer,address,undefined
FUZZ_SECONDS ?= 60

.PHONY: all deps module unit test run stop fuzz bench soak clean \
        asan test-asan test-valgrind deb test-deb mutants

all: module

deps:
	@./util/deps

module: $(MODULE)

# Configure once against the nginx-dev headers with Debian's own flags
# (--with-compat), in a private copy so /usr/share stays untouched.
$(BUILD)/nginx/objs/Makefile: config
	@rm -rf $(BUILD)/nginx
	@mkdir -p $(BUILD)
	@cp -r $(NGX_SRC) $(BUILD)/nginx
	@cd $(BUILD)/nginx && bash -c '. ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fPIC" \
	        --add-dynamic-module=$(CURDIR)' > ../configure.log 2>&1 \
	    || { tail -20 ../configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx/objs/Makefile $(MODULE_SRCS)
	@$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules
	@cp $(BUILD)/nginx/objs/ngx_http_ai_guard_module.so $@

# Each pure file compiled once for all the unit tests (23 tests linking
# 25 files each took minutes compiled test by test on 2 cores).
$(BUILD)/unit/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@$(UNIT_CC) $(UNIT_FLAGS) -c -o $@ $<

.SECONDARY: $(PURE_OBJS)

$(BUILD)/unit/%: t/unit/%.c $(PURE_OBJS) $(wildcard src/*.h) t/unit/tap.h
	@mkdir -p $(dir $@)
	@$(UNIT_CC) $(UNIT_FLAGS) -o $@ $< $(PURE_OBJS) $(PURE_LIBS)

unit: $(UNIT_BINS)

# NGINX_VERSION=1.26 or sid: the suite against another nginx of the
# version matrix (util/nginx-build builds it once into build/nginx-NAME/,
# then only the module again); unset or 1.22, Debian 12's packaged nginx.
NGINX_VERSION ?=

test: deps unit $(if $(filter-out 1.22 1.22.1,$(NGINX_VERSION)),,module)
	@./util/check-layout
	@./util/mutants --check
	@./util/nginx-build $(NGINX_VERSION)
	@eval "$$(NGINX=$(NGINX) ECHO_SO=$(ECHO_SO) \
	          ./util/nginx-build --env $(NGINX_VERSION))" && \
	echo "test: $$($$TEST_NGINX_BINARY -v 2>&1)" && \
	    ./util/redis-test prove -I t/lib -r t/

# An nginx 1.22.1 from Debian's source package under ASan and UBSan with
# the module compiled in (util/asan-build), and the whole suite against it.
# Leaks are not checked: nginx frees its cycle pool by exiting (see
# docs/testing.md).  Every report, in an error log, a stderr capture or the
# sanitizers' own files, fails the run.
ASAN_NGINX := $(BUILD)/asan/nginx-1.22.1/objs/nginx
ASAN_LOGS  := $(CURDIR)/$(BUILD)/asan/reports

asan:
	@./util/deps
	@./util/asan-build

test-asan: deps unit asan
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	@ASAN_OPTIONS=abort_on_error=1:detect_leaks=0:log_path=$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_LOGS)/ubsan \
	TEST_NGINX_SANITIZER_LOGS=$(ASAN_LOGS)/kept \
	TEST_NGINX_BINARY=$(CURDIR)/$(ASAN_NGINX) \
	TEST_NGINX_LOAD_MODULES="$(ECHO_SO)" \
	    ./util/redis-test prove -I t/lib -r t/; rc=$$?; \
	./util/sanitizer-scan asan $(ASAN_LOGS) t/servroot* || rc=1; \
	exit $$rc

# The suite with nginx under valgrind's memcheck; fails on invalid accesses
# and definite leaks whose stack runs through the module.
VG_LOGS    := $(CURDIR)/$(BUILD)/valgrind

test-valgrind: deps module unit
	@./util/deps --bench
	@rm -rf $(VG_LOGS) && mkdir -p $(VG_LOGS)
	@TEST_NGINX_USE_VALGRIND="--tool=memcheck --leak-check=full \
	    --errors-for-leak-kinds=definite --show-possibly-lost=no \
	    --error-exitcode=99 --log-file=$(VG_LOGS)/vg.%p" \
	TEST_NGINX_TIMEOUT=$${TEST_NGINX_TIMEOUT:-15} \
	TEST_NGINX_LOG_WAIT=$${TEST_NGINX_LOG_WAIT:-5} \
	TEST_NGINX_BINARY=$(NGINX) \
	TEST_NGINX_LOAD_MODULES="$(CURDIR)/$(MODULE) $(ECHO_SO)" \
	    ./util/redis-test prove -I t/lib -r t/; rc=$$?; \
	./util/sanitizer-scan valgrind $(VG_LOGS) || rc=1; \
	exit $$rc

# The mutation run of docs/testing.md: each mutation of t/mutants.list is
# planted in a scratch copy under $TMPDIR (never in this tree), built, and
# the tests it names run; every one must be caught.  On demand, not in
# `make test` or CI: it takes a while (the time of a run is in the doc).
mutants: deps
	@./util/mutants

$(BUILD)/fuzz/%: fuzz/%.c $(PURE_SRCS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@clang $(FUZZ_FLAGS) -o $@ $< $(PURE_SRCS) $(PURE_LIBS)

fuzz:
	@./util/deps --fuzz
	@$(MAKE) -s $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	    n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	        $(BUILD)/fuzz/corpus/$$n fuzz/corpus/$$n \
	        > $(BUILD)/fuzz/$$n.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	done

# The Debian package (debian/, debhelper and dh_nginx) for the packaged
# nginx 1.22.1, into build/, with lintian's word on it; then the package
# installed into a clean Debian 12's nginx, used, purged (docs/packaging.md).
deb:
	@./util/deps --deb
	@./util/deb-build

test-deb: deb
	@./util/deb-test

run: deps module
	@./util/run start

stop:
	@./util/run stop

bench: deps module
	@./util/deps --bench
	@./bench/overhead

# The acceptance soak of docs/state.md: 200,000 random requests against a
# 1m zone while existing tenants keep using it (a few seconds to a minute).
soak: deps module
	@./util/deps --bench
	@./bench/soak

clean:
	rm -rf $(BUILD) t/servroot
