#!/bin/sh
# Regenerates the JWT fixtures of t/unit/jwt_test.c: test-only keys (made
# once, kept in the repo), JWKS documents, tokens (one file each, *.jwt)
# and fixtures.h, which carries them all into the test as C strings.
# Times are fixed (iat 1700000000, exp 1700003600): the test verifies at
# now = 1700001000, so nothing here ever expires.
#
#   sh t/unit/data/jwt/mint.sh

set -e

d=$(cd "$(dirname "$0")" && pwd)
mint="$d/../../../../util/jwt-mint"
cd "$d"

[ -f rsa1.pem ] || openssl genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -out rsa1.pem 2>/dev/null
[ -f rsa2.pem ] || openssl genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -out rsa2.pem 2>/dev/null
[ -f ec256.pem ] || openssl genpkey -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-256 -out ec256.pem
[ -f ec384.pem ] || openssl genpkey -algorithm EC \
    -pkeyopt ec_paramgen_curve:P-384 -out ec384.pem
# an HS256 secret as Supabase hands one out: 40 printable characters
[ -f hs.secret ] || printf '%s' \
    "$(openssl rand -base64 30 | tr -d '\n+/=' | cut -c1-40)" > hs.secret
openssl pkey -in rsa1.pem -pubout -out rsa1.pub.pem

jwk() { "$mint" --jwk "$@"; }

jwk rsa1.pem --kid rsa1 > rsa1.jwk
printf '{"keys":[%s,%s,%s,%s]}\n' \
    "$(cat rsa1.jwk)" \
    "$(jwk ec256.pem --kid ec256)" \
    "$(jwk ec384.pem --kid ec384)" \
    "$(jwk hs.secret --kid hs1 --alg HS256)" > jwks.json
printf '{"keys":[%s,%s]}\n' \
    "$(cat rsa1.jwk)" "$(jwk rsa2.pem --kid rsa2)" > jwks-rotation.json
printf '{"keys":[%s]}\n' "$(cat rsa1.jwk)" > jwks-rsa.json

iss='https://abcdefghijklmnop.supabase.co/auth/v1'
sub='6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f'
t='"iat":1700000000,"exp":1700003600'
base="{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",$t}"

tok() { name=$1; shift; "$mint" "$@" > "$name.jwt"; }

tok rs256          --key rsa1.pem --kid rsa1 "$base"
tok rs256_nokid    --key rsa1.pem "$base"
tok rs384          --key rsa1.pem --kid rsa1 --alg RS384 "$base"
tok ps256          --key rsa1.pem --kid rsa1 --alg PS256 "$base"
tok rs512          --key rsa1.pem --kid rsa1 --alg RS512 "$base"
tok ps384          --key rsa1.pem --kid rsa1 --alg PS384 "$base"
tok ps512          --key rsa1.pem --kid rsa1 --alg PS512 "$base"
tok rs256_rsa2     --key rsa2.pem --kid rsa2 "$base"
tok rs256_rsa2_nokid --key rsa2.pem "$base"
tok rs256_wrongkid --key rsa1.pem --kid nope "$base"
tok rs256_kidswap  --key rsa2.pem --kid rsa1 "$base"
tok es256          --key ec256.pem --kid ec256 "$base"
tok es256_nokid    --key ec256.pem "$base"
tok es384          --key ec384.pem --kid ec384 "$base"
tok es256_der      --key ec256.pem --kid ec256 --der-sig "$base"
tok es256_as384    --key ec256.pem --kid ec384 --alg ES384 "$base"
tok hs256          --key hs.secret --kid hs1 "$base"
tok hs256_nokid    --key hs.secret "$base"
tok hs256_rsapem   --key rsa1.pub.pem --kid rsa1 --alg HS256 "$base"
tok hs256_rsapem_nokid --key rsa1.pub.pem --alg HS256 "$base"
tok hs256_rsajwk   --key rsa1.jwk --kid rsa1 --alg HS256 "$base"
tok alg_none       --key hs.secret --alg none "$base"
tok alg_none_kid   --key hs.secret --header '{"alg":"none","kid":"rsa1"}' \
                   --alg none "$base"
tok alg_None       --key hs.secret --header '{"alg":"None"}' --alg none \
                   "$base"
tok crit           --key rsa1.pem \
                   --header '{"alg":"RS256","kid":"rsa1","crit":["exp"]}' \
                   "$base"
tok expired        --key rsa1.pem --kid rsa1 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"iat\":1699990000,\"exp\":1700000500}"
tok nbf_future     --key rsa1.pem --kid rsa1 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"nbf\":1700002000,$t}"
tok iat_future     --key ec256.pem --kid ec256 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"iat\":1700005000,\"exp\":1700009000}"
tok wrong_iss      --key rsa1.pem --kid rsa1 \
    "{\"iss\":\"https://evil.supabase.co/auth/v1\",\"aud\":\"authenticated\",\"sub\":\"$sub\",$t}"
tok wrong_aud      --key rsa1.pem --kid rsa1 \
    "{\"iss\":\"$iss\",\"aud\":\"anon\",\"sub\":\"$sub\",$t}"
tok aud_array      --key ec256.pem --kid ec256 \
    "{\"iss\":\"$iss\",\"aud\":[\"other\",\"authenticated\"],\"sub\":\"$sub\",$t}"
tok aud_array_wrong --key ec256.pem --kid ec256 \
    "{\"iss\":\"$iss\",\"aud\":[\"other\",\"anon\"],\"sub\":\"$sub\",$t}"
tok no_exp         --key hs.secret --kid hs1 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"iat\":1700000000}"
tok exp_string     --key hs.secret --kid hs1 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"exp\":\"1700003600\"}"
tok exp_float      --key hs.secret --kid hs1 \
    "{\"iss\":\"$iss\",\"aud\":\"authenticated\",\"sub\":\"$sub\",\"exp\":1.7000036e9}"
tok dup_exp        --key hs.secret --kid hs1 \
    "{\"exp\":1,\"sub\":\"$sub\",\"exp\":1700003600}"
tok supabase       --key ec256.pem --kid ec256 \
    "{\"aud\":\"authenticated\",\"exp\":1700003600,\"iat\":1700000000,\"iss\":\"$iss\",\"sub\":\"$sub\",\"email\":\"ana@acme.test\",\"phone\":\"\",\"app_metadata\":{\"provider\":\"email\",\"providers\":[\"email\"],\"tenant\":\"acme\",\"tier\":\"pro\",\"models\":[\"gpt-4o\",\"gpt-4o-mini*\"]},\"user_metadata\":{\"tenant\":\"forged\"},\"role\":\"authenticated\",\"aal\":\"aal1\",\"amr\":[{\"method\":\"password\",\"timestamp\":1700000000}],\"session_id\":\"0b1c\",\"is_anonymous\":false}"
tok supabase_hs256 --key hs.secret \
    "{\"aud\":\"authenticated\",\"exp\":1700003600,\"iat\":1700000000,\"iss\":\"$iss\",\"sub\":\"$sub\",\"app_metadata\":{\"tenant\":\"acme\",\"tier\":\"free\"},\"role\":\"authenticated\"}"
tok claims_misc    --key hs.secret --kid hs1 \
    "{\"sub\":\"u1\",$t,\"org\":{\"id\":42,\"plan\":{\"name\":\"te\\u0061m\"},\"models\":\"gpt-4o, o1-mini  claude-3\"},\"tenant\":\"ac\\u006de\\\\/x\",\"arr\":[{\"org\":{\"id\":\"no\"}}]}"
tok claims_ctrl    --key hs.secret --kid hs1 \
    "{\"sub\":\"u1\\n2\",$t}"
tok claims_types   --key hs.secret --kid hs1 \
    "{\"sub\":\"u1\",$t,\"tenant\":{\"x\":1},\"tier\":true,\"kid\":1.5,\"models\":[\"a\",1,[\"b\"],\"\",\"c\"]}"
tok not_object     --key hs.secret --kid hs1 "[$t]"
tok payload_badjson --key hs.secret --kid hs1 "{\"exp\":1700003600,"

# tampered: rs256's header and signature around another payload
h=$(cut -d. -f1 rs256.jwt)
s=$(cut -d. -f3 rs256.jwt)
p=$(printf '%s' "${base%\}},\"role\":\"admin\"}" \
    | openssl base64 -A | tr '+/' '-_' | tr -d '=')
printf '%s.%s.%s\n' "$h" "$p" "$s" > tampered.jwt

# fixtures.h: every *.jwt and jwks*.json as a C string
{
    printf '/*\n * Generated by t/unit/data/jwt/mint.sh: do not edit.\n */\n\n'
    for f in *.jwt jwks*.json rsa1.jwk hs.secret; do
        n=$(printf '%s' "$f" | tr '.-' '__')
        printf 'static const char  fx_%s[] =\n' "$n"
        perl -0777 -ne 's/\n\z//; s/(["\\])/\\$1/g;
            for my $c (unpack("(A70)*", $_)) { print "    \"$c\"\n" }' "$f"
        printf '    ;\n\n'
    done
} > fixtures.h
