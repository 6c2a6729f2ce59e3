// Verification of the forges added to GitHub and GitLab: Gitea, Forgejo, Bitbucket Cloud and
// Data Center, GitLab signing tokens (Standard Webhooks) and the generic source. Good, bad,
// missing and rotated credentials, over real fixture bodies.
#include "ingest/fixture.hpp"
#include "ingest/signature.hpp"

#include <chrono>

namespace hookrelay {
namespace {

using namespace std::chrono_literals;
using ingest::Digest;
using ingest::encode_base64;
using ingest::hmac;
using ingest::hmac_hex;
using ingest::verify;
using test::load_delivery;
using test::source_for;

constexpr std::string_view k_secret = "forge-verify-secret";

HeaderMap with(HeaderMap headers, std::string name, std::string value) {
    headers.add(std::move(name), std::move(value));
    return headers;
}

// --- Gitea / Forgejo -------------------------------------------------------------------------

TEST(GiteaVerify, AcceptsSignedFixture) {
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto headers =
        with(d.headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, k_secret, d.body));
    EXPECT_TRUE(verify(source_for(Provider::gitea, {std::string(k_secret)}), headers, d.body));
}

TEST(GiteaVerify, RejectsWrongSecret) {
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto headers =
        with(d.headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, "other", d.body));
    EXPECT_EQ(verify(source_for(Provider::gitea, {std::string(k_secret)}), headers, d.body).error(),
              errc::signature_mismatch);
}

TEST(GiteaVerify, EmptySignatureIsUnsignedNotValid) {
    // A hook without a secret still sends the header, empty.
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto src = source_for(Provider::gitea, {std::string(k_secret)});
    EXPECT_EQ(verify(src, with(d.headers, "X-Gitea-Signature", ""), d.body).error(),
              errc::signature_missing);
    EXPECT_EQ(verify(src, d.headers, d.body).error(), errc::signature_missing);
}

TEST(GiteaVerify, IgnoresGithubStyleHeaders) {
    // Gitea also sends X-Hub-Signature-256; the Gitea header is the one checked.
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto headers = with(d.headers, "X-Hub-Signature-256",
                              "sha256=" + hmac_hex(Digest::sha256, k_secret, d.body));
    EXPECT_EQ(verify(source_for(Provider::gitea, {std::string(k_secret)}), headers, d.body).error(),
              errc::signature_missing);
}

TEST(GiteaVerify, RejectsMalformedSignature) {
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto src = source_for(Provider::gitea, {std::string(k_secret)});
    const auto hex = hmac_hex(Digest::sha256, k_secret, d.body);
    for (const auto& bad : {"sha256=" + hex, hex.substr(1), hex.substr(0, 63) + "x"}) {
        EXPECT_EQ(verify(src, with(d.headers, "X-Gitea-Signature", bad), d.body).error(),
                  errc::signature_malformed)
            << bad;
    }
}

TEST(GiteaVerify, AnyRotatedSecretVerifies) {
    const auto d = load_delivery("gitea", "release-published");
    const auto src = source_for(Provider::gitea, {"old", "new"});
    for (const auto* secret : {"old", "new"}) {
        EXPECT_TRUE(verify(
            src, with(d.headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, secret, d.body)),
            d.body))
            << secret;
    }
}

TEST(GiteaVerify, FormDeliveryIsSignedOverTheJsonPayload) {
    // Gitea signs the JSON it put in `payload=`, not the form bytes (GitHub's way).
    const auto d = load_delivery("gitea", "push-branch-update");
    const auto form = "payload=" + test::form_encode(d.body);
    HeaderMap headers{{"Content-Type", "application/x-www-form-urlencoded"},
                      {"X-Gitea-Event", "push"}};
    const auto src = source_for(Provider::gitea, {std::string(k_secret)});
    EXPECT_TRUE(verify(
        src, with(headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, k_secret, d.body)), form));
    EXPECT_EQ(
        verify(src, with(headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, k_secret, form)),
               form)
            .error(),
        errc::signature_mismatch);
}

TEST(GiteaVerify, AuthorizationHeaderAlone) {
    const auto d = load_delivery("gitea", "push-branch-update");
    auto src = source_for(Provider::gitea);
    src.authorization = {Secret("Bearer s3cret-value")};
    EXPECT_TRUE(verify(src, with(d.headers, "Authorization", "Bearer s3cret-value"), d.body));
    EXPECT_EQ(verify(src, with(d.headers, "Authorization", "Bearer s3cret-valu"), d.body).error(),
              errc::signature_mismatch);
    EXPECT_EQ(verify(src, d.headers, d.body).error(), errc::signature_missing);
}

TEST(GiteaVerify, SecretAndAuthorizationMustBothVerify) {
    const auto d = load_delivery("gitea", "push-branch-update");
    auto src = source_for(Provider::gitea, {std::string(k_secret)});
    src.authorization = {Secret("Bearer s3cret-value")};
    const auto signed_headers =
        with(d.headers, "X-Gitea-Signature", hmac_hex(Digest::sha256, k_secret, d.body));
    EXPECT_EQ(verify(src, signed_headers, d.body).error(), errc::signature_missing);
    EXPECT_EQ(verify(src, with(signed_headers, "Authorization", "Bearer wrong"), d.body).error(),
              errc::signature_mismatch);
    EXPECT_TRUE(verify(src, with(signed_headers, "Authorization", "Bearer s3cret-value"), d.body));
}

TEST(ForgejoVerify, AcceptsEitherSignatureHeader) {
    const auto d = load_delivery("forgejo", "push-multi-commit");
    const auto src = source_for(Provider::forgejo, {std::string(k_secret)});
    const auto hex = hmac_hex(Digest::sha256, k_secret, d.body);
    EXPECT_TRUE(verify(src, with(d.headers, "X-Forgejo-Signature", hex), d.body));
    EXPECT_TRUE(verify(src, with(d.headers, "X-Gitea-Signature", hex), d.body));
}

TEST(ForgejoVerify, ItsOwnHeaderDecidesWhenBothAreSent) {
    // A wrong X-Forgejo-Signature is not rescued by a right X-Gitea-Signature.
    const auto d = load_delivery("forgejo", "push-multi-commit");
    const auto src = source_for(Provider::forgejo, {std::string(k_secret)});
    auto headers = with(d.headers, "X-Forgejo-Signature", hmac_hex(Digest::sha256, "x", d.body));
    headers.add("X-Gitea-Signature", hmac_hex(Digest::sha256, k_secret, d.body));
    EXPECT_EQ(verify(src, headers, d.body).error(), errc::signature_mismatch);
}

TEST(ForgejoVerify, RejectsMissingSignature) {
    const auto d = load_delivery("forgejo", "pull_request-opened");
    EXPECT_EQ(
        verify(source_for(Provider::forgejo, {std::string(k_secret)}), d.headers, d.body).error(),
        errc::signature_missing);
}

// --- Bitbucket -------------------------------------------------------------------------------

TEST(BitbucketCloudVerify, AcceptsSignedFixture) {
    const auto d = load_delivery("bitbucket-cloud", "repo_push-branch-update");
    const auto headers =
        with(d.headers, "X-Hub-Signature", "sha256=" + hmac_hex(Digest::sha256, k_secret, d.body));
    EXPECT_TRUE(
        verify(source_for(Provider::bitbucket_cloud, {std::string(k_secret)}), headers, d.body));
}

TEST(BitbucketCloudVerify, RejectsWrongMissingAndMalformed) {
    const auto d = load_delivery("bitbucket-cloud", "pullrequest-fulfilled");
    const auto src = source_for(Provider::bitbucket_cloud, {std::string(k_secret)});
    const auto hex = hmac_hex(Digest::sha256, "wrong", d.body);
    EXPECT_EQ(verify(src, with(d.headers, "X-Hub-Signature", "sha256=" + hex), d.body).error(),
              errc::signature_mismatch);
    EXPECT_EQ(verify(src, d.headers, d.body).error(), errc::signature_missing);
    EXPECT_EQ(verify(src, with(d.headers, "X-Hub-Signature", "sha256="), d.body).error(),
              errc::signature_missing);
    // The header's name is GitHub's legacy SHA-1 one, but Bitbucket signs with SHA-256.
    EXPECT_EQ(verify(src,
                     with(d.headers, "X-Hub-Signature",
                          "sha1=" + hmac_hex(Digest::sha1, k_secret, d.body)),
                     d.body)
                  .error(),
              errc::signature_malformed);
}

TEST(BitbucketCloudVerify, AnyRotatedSecretVerifies) {
    const auto d = load_delivery("bitbucket-cloud", "repo_push-tag-created");
    const auto src = source_for(Provider::bitbucket_cloud, {"old", "new"});
    for (const auto* secret : {"old", "new"}) {
        EXPECT_TRUE(verify(src,
                           with(d.headers, "X-Hub-Signature",
                                "sha256=" + hmac_hex(Digest::sha256, secret, d.body)),
                           d.body));
    }
}

TEST(BitbucketServerVerify, AcceptsSignedFixtureAndRejectsOthers) {
    const auto d = load_delivery("bitbucket-server", "refs_changed-branch-update");
    const auto src = source_for(Provider::bitbucket_server, {"old", std::string(k_secret)});
    EXPECT_TRUE(verify(
        src,
        with(d.headers, "X-Hub-Signature", "sha256=" + hmac_hex(Digest::sha256, k_secret, d.body)),
        d.body));
    EXPECT_TRUE(verify(
        src,
        with(d.headers, "X-Hub-Signature", "sha256=" + hmac_hex(Digest::sha256, "old", d.body)),
        d.body));
    EXPECT_EQ(verify(src,
                     with(d.headers, "X-Hub-Signature",
                          "sha256=" + hmac_hex(Digest::sha256, "wrong", d.body)),
                     d.body)
                  .error(),
              errc::signature_mismatch);
    EXPECT_EQ(verify(src, d.headers, d.body).error(), errc::signature_missing);
}

TEST(BitbucketServerVerify, UnsignedTestConnectionPingIsLetThrough) {
    const auto d = load_delivery("bitbucket-server", "diagnostics-ping");
    EXPECT_TRUE(
        verify(source_for(Provider::bitbucket_server, {std::string(k_secret)}), d.headers, d.body));
}

TEST(BitbucketServerVerify, SignedPingIsStillChecked) {
    const auto d = load_delivery("bitbucket-server", "diagnostics-ping");
    const auto headers =
        with(d.headers, "X-Hub-Signature", "sha256=" + hmac_hex(Digest::sha256, "wrong", d.body));
    EXPECT_EQ(
        verify(source_for(Provider::bitbucket_server, {std::string(k_secret)}), headers, d.body)
            .error(),
        errc::signature_mismatch);
}

TEST(BitbucketServerVerify, OnlyAPingGoesUnsigned) {
    // The same body with another event key is a delivery like any other.
    const auto d = load_delivery("bitbucket-server", "diagnostics-ping");
    HeaderMap headers{{"Content-Type", "application/json"}, {"X-Event-Key", "repo:refs_changed"}};
    EXPECT_EQ(
        verify(source_for(Provider::bitbucket_server, {std::string(k_secret)}), headers, d.body)
            .error(),
        errc::signature_missing);
}

TEST(BitbucketServerVerify, BasicAuthorization) {
    const auto d = load_delivery("bitbucket-server", "pr-opened");
    auto src = source_for(Provider::bitbucket_server);
    src.authorization = {Secret("Basic aG9va3JlbGF5OnMzY3JldA==")};
    EXPECT_TRUE(
        verify(src, with(d.headers, "Authorization", "Basic aG9va3JlbGF5OnMzY3JldA=="), d.body));
    EXPECT_EQ(verify(src, with(d.headers, "Authorization", "Basic eA=="), d.body).error(),
              errc::signature_mismatch);
    EXPECT_EQ(verify(src, d.headers, d.body).error(), errc::signature_missing);
}

// --- GitLab signing tokens (Standard Webhooks) -----------------------------------------------

// The Standard Webhooks specification's published example.
constexpr std::string_view k_spec_token = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view k_spec_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::string_view k_spec_body = R"({"test": 2432232314})";
constexpr std::string_view k_spec_signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const auto k_spec_time = std::chrono::system_clock::time_point(1614265330s);

SourceConfig signing_source(std::vector<std::string> tokens) {
    auto src = source_for(Provider::gitlab);
    for (auto& t : tokens) src.signing_tokens.emplace_back(std::move(t));
    return src;
}

HeaderMap spec_headers(std::string_view signature = k_spec_signature) {
    return {{"webhook-id", std::string(k_spec_id)},
            {"webhook-timestamp", "1614265330"},
            {"webhook-signature", std::string(signature)}};
}

// A signing token's key: 32 random-looking bytes.
const std::string k_key = "0123456789abcdef0123456789ABCDEF";
const std::string k_token = "whsec_" + encode_base64(k_key);

// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", as GitLab sends it.
std::string gitlab_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                             std::string_view body) {
    const auto content =
        std::string(id) + "." + std::to_string(timestamp) + "." + std::string(body);
    return "v1," + encode_base64(hmac(Digest::sha256, key, content));
}

HeaderMap signed_gitlab(const test::Delivery& d, std::string_view key,
                        std::chrono::system_clock::time_point signed_at) {
    const auto ts = std::chrono::duration_cast<std::chrono::seconds>(signed_at.time_since_epoch());
    auto headers = d.headers;
    headers.add("webhook-id", "b5d2a4b0-5a1c-4e2b-9d1e-000000000001");
    headers.add("webhook-timestamp", std::to_string(ts.count()));
    headers.add("webhook-signature",
                gitlab_signature(key, "b5d2a4b0-5a1c-4e2b-9d1e-000000000001", ts.count(), d.body));
    return headers;
}

TEST(GitlabSigningVerify, MatchesTheStandardWebhooksExample) {
    EXPECT_TRUE(verify(signing_source({std::string(k_spec_token)}), spec_headers(), k_spec_body,
                       k_spec_time));
}

TEST(GitlabSigningVerify, WhsecPrefixIsOptional) {
    const auto bare = std::string(k_spec_token.substr(6));
    EXPECT_TRUE(verify(signing_source({bare}), spec_headers(), k_spec_body, k_spec_time));
}

TEST(GitlabSigningVerify, AcceptsSignedFixture) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    EXPECT_TRUE(verify(signing_source({k_token}), signed_gitlab(d, k_key, now), d.body, now));
}

TEST(GitlabSigningVerify, RejectsWrongKeyAndTamperedBody) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    const auto headers = signed_gitlab(d, "another key, another signature!!", now);
    EXPECT_EQ(verify(signing_source({k_token}), headers, d.body, now).error(),
              errc::signature_mismatch);
    EXPECT_EQ(
        verify(signing_source({k_token}), signed_gitlab(d, k_key, now), d.body + " ", now).error(),
        errc::signature_mismatch);
    // The key is the decoded base64, not the token's text.
    EXPECT_EQ(
        verify(signing_source({k_token}), signed_gitlab(d, k_token, now), d.body, now).error(),
        errc::signature_mismatch);
}

TEST(GitlabSigningVerify, RejectsTimestampsOutsideTheWindowAsReplays) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    const auto src = signing_source({k_token});  // default window: 5 minutes
    EXPECT_TRUE(verify(src, signed_gitlab(d, k_key, now - 4min), d.body, now));
    EXPECT_TRUE(verify(src, signed_gitlab(d, k_key, now + 4min), d.body, now));
    EXPECT_EQ(verify(src, signed_gitlab(d, k_key, now - 6min), d.body, now).error(),
              errc::timestamp_out_of_window);
    EXPECT_EQ(verify(src, signed_gitlab(d, k_key, now + 6min), d.body, now).error(),
              errc::timestamp_out_of_window);
}

TEST(GitlabSigningVerify, WindowIsConfigurable) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    auto src = signing_source({k_token});
    src.timestamp_window = 30s;
    EXPECT_TRUE(verify(src, signed_gitlab(d, k_key, now - 20s), d.body, now));
    EXPECT_EQ(verify(src, signed_gitlab(d, k_key, now - 40s), d.body, now).error(),
              errc::timestamp_out_of_window);
}

TEST(GitlabSigningVerify, OneOfSeveralSignaturesIsEnough) {
    const auto garbage = "v1," + encode_base64(std::string(32, 'x'));
    for (const auto& list :
         {garbage + " " + std::string(k_spec_signature),
          std::string(k_spec_signature) + " " + garbage,
          "v1a,c2lnbmVkIGJ5IGFuIGFzeW1tZXRyaWMga2V5 " + std::string(k_spec_signature)}) {
        EXPECT_TRUE(verify(signing_source({std::string(k_spec_token)}), spec_headers(list),
                           k_spec_body, k_spec_time))
            << list;
    }
    EXPECT_EQ(verify(signing_source({std::string(k_spec_token)}), spec_headers(garbage),
                     k_spec_body, k_spec_time)
                  .error(),
              errc::signature_mismatch);
}

TEST(GitlabSigningVerify, AnyRotatedSigningTokenVerifies) {
    const auto src = signing_source({k_token, std::string(k_spec_token)});
    EXPECT_TRUE(verify(src, spec_headers(), k_spec_body, k_spec_time));
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    EXPECT_TRUE(verify(src, signed_gitlab(d, k_key, now), d.body, now));
}

TEST(GitlabSigningVerify, MalformedHeaders) {
    const auto src = signing_source({std::string(k_spec_token)});
    auto no_id = spec_headers();
    no_id = HeaderMap{{"webhook-timestamp", "1614265330"},
                      {"webhook-signature", std::string(k_spec_signature)}};
    EXPECT_EQ(verify(src, no_id, k_spec_body, k_spec_time).error(), errc::signature_malformed);
    for (const auto* ts : {"", "16142653.30", "-1614265330", "soon"}) {
        HeaderMap h{{"webhook-id", std::string(k_spec_id)},
                    {"webhook-timestamp", ts},
                    {"webhook-signature", std::string(k_spec_signature)}};
        EXPECT_EQ(verify(src, h, k_spec_body, k_spec_time).error(), errc::timestamp_malformed)
            << ts;
    }
    EXPECT_EQ(verify(src, spec_headers("v2,abc"), k_spec_body, k_spec_time).error(),
              errc::signature_malformed);
    EXPECT_EQ(verify(src, spec_headers("v1,not base64!"), k_spec_body, k_spec_time).error(),
              errc::signature_malformed);
    EXPECT_EQ(verify(src, HeaderMap{}, k_spec_body, k_spec_time).error(), errc::signature_missing);
}

TEST(GitlabSigningVerify, TokenOrSignatureDuringAMigration) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    auto src = signing_source({k_token});
    src.secrets = {Secret("plain-token")};
    const auto signed_headers = signed_gitlab(d, k_key, now);
    // Either credential alone verifies; both must be right when both are sent.
    EXPECT_TRUE(verify(src, signed_headers, d.body, now));
    EXPECT_TRUE(verify(src, with(d.headers, "X-Gitlab-Token", "plain-token"), d.body, now));
    EXPECT_TRUE(verify(src, with(signed_headers, "X-Gitlab-Token", "plain-token"), d.body, now));
    EXPECT_EQ(verify(src, with(signed_headers, "X-Gitlab-Token", "wrong"), d.body, now).error(),
              errc::signature_mismatch);
    EXPECT_EQ(verify(src, d.headers, d.body, now).error(), errc::signature_missing);
}

TEST(GitlabSigningVerify, SigningOnlySourceRefusesAPlainToken) {
    const auto d = load_delivery("gitlab", "push-branch-update");
    EXPECT_EQ(
        verify(signing_source({k_token}), with(d.headers, "X-Gitlab-Token", "anything"), d.body)
            .error(),
        errc::signature_missing);
}

TEST(GitlabSigningVerify, TokenOnlySourceIgnoresSignatures) {
    // Without a signing token configured there is no key to check a signature with; the token
    // decides, as before.
    const auto d = load_delivery("gitlab", "push-branch-update");
    const auto now = std::chrono::system_clock::now();
    const auto src = source_for(Provider::gitlab, {"plain-token"});
    EXPECT_EQ(verify(src, signed_gitlab(d, k_key, now), d.body, now).error(),
              errc::signature_missing);
    EXPECT_TRUE(verify(src, with(signed_gitlab(d, k_key, now), "X-Gitlab-Token", "plain-token"),
                       d.body, now));
}

TEST(SigningKey, DecodesTheBase64AfterWhsec) {
    EXPECT_EQ(ingest::signing_key(k_token), k_key);
    EXPECT_EQ(ingest::signing_key(k_token.substr(6)), k_key);
    EXPECT_FALSE(ingest::signing_key("whsec_"));
    EXPECT_FALSE(ingest::signing_key("whsec_not*base64"));
}

TEST(Base64, RoundTripsAndRefusesGarbage) {
    for (const std::string raw : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        EXPECT_EQ(ingest::decode_base64(encode_base64(raw)), raw) << raw;
    }
    EXPECT_EQ(encode_base64("foobar"), "Zm9vYmFy");
    EXPECT_EQ(ingest::decode_base64("Zm9vYg"), "foob");  // padding optional
    EXPECT_FALSE(ingest::decode_base64("Zm9vY"));        // 4n+1 characters
    EXPECT_FALSE(ingest::decode_base64("Zm9v=mFy"));     // '=' inside
    EXPECT_FALSE(ingest::decode_base64("Zm9vYg==="));    // too much padding
    EXPECT_FALSE(ingest::decode_base64("Zm9v-_"));       // URL alphabet
}

// --- Generic ---------------------------------------------------------------------------------

SourceConfig generic_source(SignatureSpec spec) {
    auto src = source_for(Provider::generic, {std::string(k_secret)});
    src.signature = std::move(spec);
    return src;
}

constexpr std::string_view k_generic_body = R"({"repository":{"repoKey":"libs-release"}})";

TEST(GenericVerify, HexSha256WithPrefix) {
    SignatureSpec spec;
    spec.header = "X-Signature";
    spec.prefix = "sha256=";
    const auto src = generic_source(spec);
    const HeaderMap good{
        {"X-Signature", "sha256=" + hmac_hex(Digest::sha256, k_secret, k_generic_body)}};
    EXPECT_TRUE(verify(src, good, k_generic_body));
    const HeaderMap wrong{
        {"X-Signature", "sha256=" + hmac_hex(Digest::sha256, "x", k_generic_body)}};
    EXPECT_EQ(verify(src, wrong, k_generic_body).error(), errc::signature_mismatch);
    const HeaderMap unprefixed{{"X-Signature", hmac_hex(Digest::sha256, k_secret, k_generic_body)}};
    EXPECT_EQ(verify(src, unprefixed, k_generic_body).error(), errc::signature_malformed);
    EXPECT_EQ(verify(src, HeaderMap{}, k_generic_body).error(), errc::signature_missing);
    EXPECT_EQ(verify(src, {{"X-Signature", "sha256="}}, k_generic_body).error(),
              errc::signature_missing);
}

TEST(GenericVerify, EveryAlgorithmAndEncoding) {
    for (const auto& [algorithm, digest] :
         {std::pair{SignatureSpec::Algorithm::sha1, Digest::sha1},
          std::pair{SignatureSpec::Algorithm::sha256, Digest::sha256},
          std::pair{SignatureSpec::Algorithm::sha512, Digest::sha512}}) {
        for (const auto encoding :
             {SignatureSpec::Encoding::hex, SignatureSpec::Encoding::base64}) {
            SignatureSpec spec;
            spec.header = "X-Sig";
            spec.algorithm = algorithm;
            spec.encoding = encoding;
            const auto mac = hmac(digest, k_secret, k_generic_body);
            const auto text = encoding == SignatureSpec::Encoding::hex
                                  ? hmac_hex(digest, k_secret, k_generic_body)
                                  : encode_base64(mac);
            EXPECT_TRUE(verify(generic_source(spec), {{"X-Sig", text}}, k_generic_body))
                << static_cast<int>(algorithm) << " " << static_cast<int>(encoding);
            // A signature of another algorithm has the wrong length.
            SignatureSpec other = spec;
            other.algorithm = algorithm == SignatureSpec::Algorithm::sha256
                                  ? SignatureSpec::Algorithm::sha512
                                  : SignatureSpec::Algorithm::sha256;
            EXPECT_EQ(verify(generic_source(other), {{"X-Sig", text}}, k_generic_body).error(),
                      errc::signature_malformed);
        }
    }
}

TEST(GenericVerify, SignedTimestampWithinTheWindow) {
    SignatureSpec spec;
    spec.header = "X-Sig";
    spec.timestamp_header = "X-Timestamp";
    spec.content = "{timestamp}.{body}";
    const auto src = generic_source(spec);
    const auto now = std::chrono::system_clock::time_point(1700000000s);
    const auto signed_headers = [&](std::int64_t ts) {
        const auto content = std::to_string(ts) + "." + std::string(k_generic_body);
        return HeaderMap{{"X-Sig", hmac_hex(Digest::sha256, k_secret, content)},
                         {"X-Timestamp", std::to_string(ts)}};
    };
    EXPECT_TRUE(verify(src, signed_headers(1700000000 - 60), k_generic_body, now));
    EXPECT_EQ(verify(src, signed_headers(1700000000 - 600), k_generic_body, now).error(),
              errc::timestamp_out_of_window);
    // A fresh timestamp on an old signature: the signature covers the timestamp.
    auto replayed = signed_headers(1700000000 - 600);
    replayed = HeaderMap{{"X-Sig", std::string(replayed.find("X-Sig").value())},
                         {"X-Timestamp", "1700000000"}};
    EXPECT_EQ(verify(src, replayed, k_generic_body, now).error(), errc::signature_mismatch);
    EXPECT_EQ(verify(src, {{"X-Sig", "00"}}, k_generic_body, now).error(),
              errc::signature_malformed);
}

TEST(GenericVerify, DeliveryIdHeaderCanBeSigned) {
    SignatureSpec spec;
    spec.header = "X-Sig";
    spec.content = "{delivery_id}:{body}";
    auto src = generic_source(spec);
    src.delivery_id = {ValueRef::From::header, "X-Delivery", {}};
    const HeaderMap headers{
        {"X-Delivery", "d-42"},
        {"X-Sig", hmac_hex(Digest::sha256, k_secret, "d-42:" + std::string(k_generic_body))}};
    EXPECT_TRUE(verify(src, headers, k_generic_body));
    const HeaderMap other_id{{"X-Delivery", "d-43"},
                             {"X-Sig", std::string(headers.find("X-Sig").value())}};
    EXPECT_EQ(verify(src, other_id, k_generic_body).error(), errc::signature_mismatch);
}

TEST(ForgeVerify, ErrorMessagesNeverContainTheSecret) {
    const std::string secret = "hunter2-very-secret";
    const auto d = load_delivery("bitbucket-cloud", "repo_push-branch-update");
    for (const auto provider : providers()) {
        auto src = source_for(provider, {secret});
        src.signing_tokens = {Secret(k_token)};
        src.authorization = {Secret(secret)};
        SignatureSpec spec;
        spec.header = "X-Sig";
        src.signature = spec;
        HeaderMap headers{{"X-Sig", "00"},
                          {"X-Hub-Signature", "sha256=00"},
                          {"X-Gitea-Signature", "00"},
                          {"Authorization", "x"},
                          {"X-Gitlab-Token", "x"}};
        const auto r = verify(src, headers, d.body);
        ASSERT_FALSE(r) << to_string(provider);
        EXPECT_EQ(r.error().message().find(secret), std::string::npos);
    }
}

TEST(ForgeVerify, AMissingCredentialNamesTheHeadersTheSourceChecks) {
    // What a 401 "signature or token missing" tells the forge's admin to send.
    using ingest::expected_credentials;
    const HeaderMap none;
    EXPECT_EQ(expected_credentials(source_for(Provider::github, {"k"}), none),
              "X-Hub-Signature-256");
    auto sha1 = source_for(Provider::github, {"k"});
    EXPECT_EQ(expected_credentials(sha1, {{"X-Hub-Signature", "sha1=00"}}),
              "X-Hub-Signature-256 (the request's X-Hub-Signature, SHA-1, is taken only with "
              "allow_sha1: true)");
    sha1.allow_sha1 = true;
    EXPECT_EQ(expected_credentials(sha1, none), "X-Hub-Signature-256 or X-Hub-Signature");

    auto gitlab = source_for(Provider::gitlab, {"t"});
    EXPECT_EQ(expected_credentials(gitlab, none), "X-Gitlab-Token");
    gitlab.signing_tokens = {Secret(k_token)};
    EXPECT_EQ(expected_credentials(gitlab, none), "X-Gitlab-Token or webhook-signature");
    gitlab.secrets.clear();
    EXPECT_EQ(expected_credentials(gitlab, none), "webhook-signature");

    auto gitea = source_for(Provider::gitea, {"k"});
    EXPECT_EQ(expected_credentials(gitea, none), "X-Gitea-Signature");
    gitea.authorization = {Secret("Bearer x")};
    EXPECT_EQ(expected_credentials(gitea, none), "X-Gitea-Signature and Authorization");
    gitea.secrets.clear();
    EXPECT_EQ(expected_credentials(gitea, none), "Authorization");
    EXPECT_EQ(expected_credentials(source_for(Provider::forgejo, {"k"}), none),
              "X-Forgejo-Signature (or X-Gitea-Signature)");

    EXPECT_EQ(expected_credentials(source_for(Provider::bitbucket_cloud, {"k"}), none),
              "X-Hub-Signature");
    auto server = source_for(Provider::bitbucket_server, {"k"});
    server.authorization = {Secret("Basic x")};
    EXPECT_EQ(expected_credentials(server, none), "X-Hub-Signature and Authorization");

    SignatureSpec spec;
    spec.header = "X-Sig";
    EXPECT_EQ(expected_credentials(generic_source(spec), none), "X-Sig");
}

}  // namespace
}  // namespace hookrelay
