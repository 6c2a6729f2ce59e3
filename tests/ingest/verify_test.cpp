#include "ingest/fixture.hpp"

#include <algorithm>
#include <cctype>

namespace hookrelay {
namespace {

using ingest::Digest;
using ingest::hmac_hex;
using ingest::verify;
using test::load_delivery;
using test::source_for;

constexpr std::string_view k_secret = "It's a Secret to Everybody";
constexpr std::string_view k_body = "Hello, World!";
// GitHub's documented test vector for k_secret over k_body.
constexpr std::string_view k_documented_sha256 =
    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

HeaderMap signed_sha256(std::string_view secret, std::string_view body) {
    return {{"X-Hub-Signature-256", "sha256=" + hmac_hex(Digest::sha256, secret, body)}};
}

HeaderMap signed_sha1(std::string_view secret, std::string_view body) {
    return {{"X-Hub-Signature", "sha1=" + hmac_hex(Digest::sha1, secret, body)}};
}

TEST(Hmac, MatchesGithubDocumentedVectors) {
    EXPECT_EQ(hmac_hex(Digest::sha256, k_secret, k_body), k_documented_sha256);
    EXPECT_EQ(hmac_hex(Digest::sha1, k_secret, k_body), "01dc10d0c83e72ed246219cdd91669667fe2ca59");
}

TEST(GithubVerify, AcceptsDocumentedSignature) {
    const HeaderMap headers{{"X-Hub-Signature-256", "sha256=" + std::string(k_documented_sha256)}};
    EXPECT_TRUE(verify(source_for(Provider::github, {std::string(k_secret)}), headers, k_body));
}

TEST(GithubVerify, AcceptsUppercaseHex) {
    auto hex = std::string(k_documented_sha256);
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    const HeaderMap headers{{"X-Hub-Signature-256", "sha256=" + hex}};
    EXPECT_TRUE(verify(source_for(Provider::github, {std::string(k_secret)}), headers, k_body));
}

TEST(GithubVerify, AcceptsSignedFixture) {
    const auto d = load_delivery("github", "push-branch-update");
    auto headers = d.headers;
    headers.add("X-Hub-Signature-256", "sha256=" + hmac_hex(Digest::sha256, "s3cret", d.body));
    EXPECT_TRUE(verify(source_for(Provider::github, {"s3cret"}), headers, d.body));
}

TEST(GithubVerify, RejectsWrongSecret) {
    const auto r =
        verify(source_for(Provider::github, {"other"}), signed_sha256(k_secret, k_body), k_body);
    EXPECT_EQ(r.error(), errc::signature_mismatch);
}

TEST(GithubVerify, RejectsTamperedBody) {
    const auto r = verify(source_for(Provider::github, {std::string(k_secret)}),
                          signed_sha256(k_secret, k_body), "Hello, World?");
    EXPECT_EQ(r.error(), errc::signature_mismatch);
}

TEST(GithubVerify, ChecksRawBytesNotReserializedJson) {
    // Same JSON, different bytes: the signature covers the bytes.
    const std::string sent = R"({"a": 1})";
    const auto r =
        verify(source_for(Provider::github, {"k"}), signed_sha256("k", sent), R"({"a":1})");
    EXPECT_EQ(r.error(), errc::signature_mismatch);
}

TEST(GithubVerify, RejectsMissingSignature) {
    const auto r = verify(source_for(Provider::github, {"k"}), HeaderMap{}, k_body);
    EXPECT_EQ(r.error(), errc::signature_missing);
}

TEST(GithubVerify, TreatsEmptyHeaderAsMissing) {
    const auto src = source_for(Provider::github, {"k"});
    EXPECT_EQ(verify(src, {{"X-Hub-Signature-256", ""}}, k_body).error(), errc::signature_missing);
    EXPECT_EQ(verify(src, {{"X-Hub-Signature-256", "sha256="}}, k_body).error(),
              errc::signature_missing);
}

TEST(GithubVerify, RejectsMalformedSignatures) {
    const auto src = source_for(Provider::github, {std::string(k_secret)});
    const auto good = std::string(k_documented_sha256);
    for (const std::string& bad : {
             good,                                  // no algorithm prefix
             "sha1=" + good,                        // wrong algorithm in the sha256 header
             "sha256=" + good.substr(0, 63),        // one digit short
             "sha256=" + good + "0",                // one digit long
             "sha256=" + good.substr(0, 63) + "g",  // not hex
             "sha256=" + std::string(32, ' ') + good.substr(0, 32),  // blanks
         }) {
        EXPECT_EQ(verify(src, {{"X-Hub-Signature-256", bad}}, k_body).error(),
                  errc::signature_malformed)
            << bad;
    }
}

TEST(GithubVerify, AnyRotatedSecretVerifies) {
    const auto src = source_for(Provider::github, {"old-secret", "new-secret"});
    EXPECT_TRUE(verify(src, signed_sha256("new-secret", k_body), k_body));
    EXPECT_TRUE(verify(src, signed_sha256("old-secret", k_body), k_body));
    EXPECT_EQ(verify(src, signed_sha256("retired", k_body), k_body).error(),
              errc::signature_mismatch);
}

TEST(GithubVerify, IgnoresSha1UnlessAllowed) {
    const auto src = source_for(Provider::github, {"k"});
    EXPECT_EQ(verify(src, signed_sha1("k", k_body), k_body).error(), errc::signature_missing);
}

TEST(GithubVerify, AcceptsSha1WhenAllowed) {
    auto src = source_for(Provider::github, {"k"});
    src.allow_sha1 = true;
    EXPECT_TRUE(verify(src, signed_sha1("k", k_body), k_body));
    EXPECT_EQ(verify(src, signed_sha1("wrong", k_body), k_body).error(), errc::signature_mismatch);
}

TEST(GithubVerify, Sha256TakesPrecedenceOverSha1) {
    auto src = source_for(Provider::github, {"k"});
    src.allow_sha1 = true;
    // A valid SHA-1 cannot rescue a wrong SHA-256.
    HeaderMap headers = signed_sha256("wrong", k_body);
    headers.add("X-Hub-Signature", "sha1=" + hmac_hex(Digest::sha1, "k", k_body));
    EXPECT_EQ(verify(src, headers, k_body).error(), errc::signature_mismatch);
}

TEST(GithubVerify, FormBodyIsSignedOverRawFormBytes) {
    const auto d = load_delivery("github", "push-branch-created-form", "form");
    auto headers = d.headers;
    headers.add("X-Hub-Signature-256", "sha256=" + hmac_hex(Digest::sha256, "k", d.body));
    const auto src = source_for(Provider::github, {"k"});
    EXPECT_TRUE(verify(src, headers, d.body));

    // Signing the decoded JSON instead (Gitea's way) must not verify a GitHub delivery.
    const auto payload = ingest::parse_body(d.content_type, d.body);
    ASSERT_TRUE(payload);
    const auto json_text = (*payload)->root().serialize();
    HeaderMap json_signed{
        {"X-Hub-Signature-256", "sha256=" + hmac_hex(Digest::sha256, "k", json_text)}};
    EXPECT_EQ(verify(src, json_signed, d.body).error(), errc::signature_mismatch);
}

TEST(GithubVerify, EmptySecretNeverVerifies) {
    const auto r = verify(source_for(Provider::github, {""}), signed_sha256("", k_body), k_body);
    EXPECT_EQ(r.error(), errc::signature_mismatch);
}

TEST(GithubVerify, InsecureSourceWithoutSecretsAcceptsUnsigned) {
    auto src = source_for(Provider::github);
    src.insecure = true;
    EXPECT_TRUE(verify(src, HeaderMap{}, k_body));
}

TEST(GithubVerify, InsecureSourceWithSecretsStillChecks) {
    auto src = source_for(Provider::github, {"k"});
    src.insecure = true;
    EXPECT_EQ(verify(src, HeaderMap{}, k_body).error(), errc::signature_missing);
}

TEST(GithubVerify, SourceWithoutSecretsRejectsUnlessInsecure) {
    const auto src = source_for(Provider::github);
    EXPECT_FALSE(verify(src, signed_sha256("anything", k_body), k_body));
}

TEST(GitlabVerify, AcceptsMatchingToken) {
    const auto d = load_delivery("gitlab", "push-docs");
    auto headers = d.headers;
    headers.add("X-Gitlab-Token", "tok-123");
    EXPECT_TRUE(verify(source_for(Provider::gitlab, {"tok-123"}), headers, d.body));
}

TEST(GitlabVerify, RejectsWrongToken) {
    const auto src = source_for(Provider::gitlab, {"tok-123"});
    EXPECT_EQ(verify(src, {{"X-Gitlab-Token", "tok-124"}}, "{}").error(), errc::signature_mismatch);
    // A prefix or an extension of the token is not the token.
    EXPECT_EQ(verify(src, {{"X-Gitlab-Token", "tok-12"}}, "{}").error(), errc::signature_mismatch);
    EXPECT_EQ(verify(src, {{"X-Gitlab-Token", "tok-1234"}}, "{}").error(),
              errc::signature_mismatch);
}

TEST(GitlabVerify, RejectsMissingToken) {
    const auto src = source_for(Provider::gitlab, {"tok"});
    EXPECT_EQ(verify(src, HeaderMap{}, "{}").error(), errc::signature_missing);
    EXPECT_EQ(verify(src, {{"X-Gitlab-Token", ""}}, "{}").error(), errc::signature_missing);
}

TEST(GitlabVerify, AnyRotatedTokenVerifies) {
    const auto src = source_for(Provider::gitlab, {"old", "new"});
    EXPECT_TRUE(verify(src, {{"X-Gitlab-Token", "new"}}, "{}"));
    EXPECT_TRUE(verify(src, {{"X-Gitlab-Token", "old"}}, "{}"));
}

TEST(GitlabVerify, IgnoresGithubSignatures) {
    const auto src = source_for(Provider::gitlab, {"k"});
    EXPECT_EQ(verify(src, signed_sha256("k", k_body), k_body).error(), errc::signature_missing);
}

TEST(GitlabVerify, InsecureSourceWithoutTokensAcceptsAnything) {
    auto src = source_for(Provider::gitlab);
    src.insecure = true;
    EXPECT_TRUE(verify(src, HeaderMap{}, "{}"));
}

TEST(Verify, ErrorMessagesNeverContainTheSecret) {
    const std::string secret = "hunter2-very-secret";
    const auto gh =
        verify(source_for(Provider::github, {secret}), signed_sha256("x", k_body), k_body);
    const auto gl = verify(source_for(Provider::gitlab, {secret}), {{"X-Gitlab-Token", "x"}}, "");
    ASSERT_FALSE(gh);
    ASSERT_FALSE(gl);
    EXPECT_EQ(gh.error().message().find(secret), std::string::npos);
    EXPECT_EQ(gl.error().message().find(secret), std::string::npos);
}

}  // namespace
}  // namespace hookrelay
