// Each forge's source keys: what it takes, what it refuses (with file:line:column and a
// did-you-mean), and what its credentials need.
#include "config/load.hpp"

#include <gmock/gmock.h>

#include <map>

namespace hookrelay::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A signing token as GitLab shows it: whsec_ + base64 of 32 bytes.
constexpr const char* k_signing_token = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

LoadResult load(const std::string& yaml) {
    LoadOptions options;
    const std::map<std::string, std::string> env = {{"S", "a-secret"},
                                                    {"S2", "another"},
                                                    {"SIGN", k_signing_token},
                                                    {"BAD_SIGN", "whsec_!!"},
                                                    {"AUTH", "Bearer xyz"}};
    options.environment.getenv = [env](const std::string& name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    return load_string(yaml, "c.yaml", options);
}

std::vector<std::string> errors_for(const std::string& yaml) {
    std::vector<std::string> out;
    for (const auto& e : load(yaml).errors) out.push_back(to_string(e));
    return out;
}

TEST(ConfigForges, EveryForgeLoadsWithItsOwnKeys) {
    const auto loaded = load(R"(sources:
  gitea: {provider: gitea, secret: "${env:S}", authorization: "${env:AUTH}"}
  forgejo: {provider: forgejo, secrets: ["${env:S}", "${env:S2}"]}
  bbc: {provider: bitbucket-cloud, secret: "${env:S}"}
  bbs: {provider: bitbucket-server, secret: "${env:S}", authorization: "${env:AUTH}"}
  gl: {provider: gitlab, signing_token: "${env:SIGN}", timestamp_window: 2m}
  nexus:
    provider: generic
    secret: "${env:S}"
    event: X-Nexus-Event
    delivery_id: payload.nodeId
    signature:
      header: X-Nexus-Webhook-Signature
      algorithm: sha1
      encoding: hex
)");
    ASSERT_THAT(loaded.errors, IsEmpty());
    const auto& s = loaded.config->sources;
    ASSERT_EQ(s.size(), 6u);
    EXPECT_EQ(s[0].provider, Provider::gitea);
    EXPECT_EQ(s[0].secrets.size(), 1u);
    ASSERT_EQ(s[0].authorization.size(), 1u);
    EXPECT_EQ(s[0].authorization[0].reveal(), "Bearer xyz");
    EXPECT_EQ(s[1].provider, Provider::forgejo);
    EXPECT_EQ(s[1].secrets.size(), 2u);
    EXPECT_EQ(s[2].provider, Provider::bitbucket_cloud);
    EXPECT_EQ(s[2].path, "/hooks/bbc");
    EXPECT_EQ(s[3].provider, Provider::bitbucket_server);
    EXPECT_EQ(s[4].provider, Provider::gitlab);
    EXPECT_TRUE(s[4].secrets.empty());
    ASSERT_EQ(s[4].signing_tokens.size(), 1u);
    EXPECT_EQ(s[4].timestamp_window, 2min);
    EXPECT_EQ(s[5].provider, Provider::generic);
    EXPECT_EQ(s[5].event_name.from, ValueRef::From::header);
    EXPECT_EQ(s[5].event_name.name, "X-Nexus-Event");
    EXPECT_EQ(s[5].delivery_id.from, ValueRef::From::payload);
    EXPECT_EQ(s[5].delivery_id.name, "nodeId");
    ASSERT_TRUE(s[5].signature);
    EXPECT_EQ(s[5].signature->header, "X-Nexus-Webhook-Signature");
    EXPECT_EQ(s[5].signature->algorithm, SignatureSpec::Algorithm::sha1);
    EXPECT_EQ(s[5].signature->encoding, SignatureSpec::Encoding::hex);
    EXPECT_EQ(s[5].signature->content, "{body}");
    // The default window, where the key is not given.
    EXPECT_EQ(s[5].timestamp_window, 5min);
}

TEST(ConfigForges, UnknownProviderListsEveryForge) {
    EXPECT_THAT(errors_for("sources:\n  b: {provider: bitbucket, insecure: true}\n"),
                ElementsAre("c.yaml:2:17: source 'b': unknown provider 'bitbucket'; use github, "
                            "gitlab, gitea, forgejo, bitbucket-cloud, bitbucket-server or "
                            "generic"));
    EXPECT_THAT(errors_for("sources:\n  b: {provider: bitbucket-sever, insecure: true}\n"),
                ElementsAre(HasSubstr("(did you mean 'bitbucket-server'?)")));
}

TEST(ConfigForges, AnotherForgesKeyIsNamedAsSuch) {
    EXPECT_THAT(errors_for("sources:\n  g: {provider: gitea, insecure: true, allow_sha1: true}\n"),
                ElementsAre("c.yaml:2:40: source 'g': `allow_sha1` applies to github sources "
                            "only, not to gitea"));
    EXPECT_THAT(errors_for("sources:\n  g: {provider: bitbucket-cloud, insecure: true, "
                           "signing_token: \"${env:SIGN}\"}\n"),
                ElementsAre(HasSubstr("`signing_token` applies to gitlab sources only, not to "
                                      "bitbucket-cloud")));
    EXPECT_THAT(errors_for("sources:\n  g: {provider: github, insecure: true, "
                           "authorization: \"${env:AUTH}\"}\n"),
                ElementsAre(HasSubstr("`authorization` applies to gitea, forgejo and "
                                      "bitbucket-server sources only, not to github")));
}

TEST(ConfigForges, TheSecretKeyIsTheForgesOwn) {
    EXPECT_THAT(errors_for("sources:\n  g: {provider: gitea, token: \"${env:S}\"}\n"),
                ElementsAre("c.yaml:2:31: source 'g': gitea sources take `secret` (rotation: "
                            "`secrets` as a list)",
                            HasSubstr("c.yaml:2:3: source 'g': no secret configured")));
    EXPECT_THAT(errors_for("sources:\n  g: {provider: gitlab, secret: \"${env:S}\"}\n"),
                ElementsAre(HasSubstr("gitlab sources take `token`"),
                            HasSubstr("no token configured; set one (a reference such as "
                                      "${env:NAME}) or a `signing_token` or say `insecure: "
                                      "true`")));
}

TEST(ConfigForges, TypoInANewKeySuggestsIt) {
    EXPECT_THAT(errors_for("sources:\n  g: {provider: gitlab, signing_tokn: \"${env:SIGN}\"}\n"),
                ElementsAre("c.yaml:2:25: unknown key 'signing_tokn' in source 'g' (did you mean "
                            "'signing_token'?)",
                            HasSubstr("no token configured")));
}

TEST(ConfigForges, SigningTokenMustBeOne) {
    // The message says what is wrong, never the value.
    const auto errors =
        errors_for("sources:\n  g: {provider: gitlab, signing_token: \"${env:BAD_SIGN}\"}\n");
    EXPECT_THAT(errors, ElementsAre("c.yaml:2:40: source 'g'.signing_token: not a signing token "
                                    "(GitLab shows it as whsec_ followed by base64)"));
    EXPECT_EQ(errors.at(0).find("whsec_!!"), std::string::npos);
}

TEST(ConfigForges, GitlabTakesTokenAndSigningTokenTogether) {
    const auto loaded = load(
        "sources:\n  g: {provider: gitlab, token: \"${env:S}\", signing_tokens: "
        "[\"${env:SIGN}\", \"${env:SIGN}\"]}\n");
    ASSERT_THAT(loaded.errors, IsEmpty());
    EXPECT_EQ(loaded.config->sources[0].secrets.size(), 1u);
    EXPECT_EQ(loaded.config->sources[0].signing_tokens.size(), 2u);
}

TEST(ConfigForges, TimestampWindowIsAtLeastASecond) {
    EXPECT_THAT(errors_for("sources:\n  g: {provider: gitlab, signing_token: \"${env:SIGN}\", "
                           "timestamp_window: 500ms}\n"),
                ElementsAre(HasSubstr("source 'g'.timestamp_window must be at least 1s")));
}

TEST(ConfigForges, GenericWithASecretNeedsASignature) {
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, secret: \"${env:S}\"}\n"),
                ElementsAre("c.yaml:2:3: source 'x': a generic source with a secret needs "
                            "`signature:` (at least its `header:`)"));
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, insecure: true, signature: "
                           "{header: X-Sig}}\n"),
                ElementsAre(HasSubstr("`signature:` needs a `secret` to verify with")));
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, insecure: true, event: X-Kind}\n"),
                IsEmpty());
}

TEST(ConfigForges, GenericSignatureValuesAreChecked) {
    EXPECT_THAT(errors_for(R"(sources:
  x:
    provider: generic
    secret: "${env:S}"
    signature:
      header: X-Sig
      algorithm: sha265
      encoding: hexa
      hedaer: X
)"),
                ElementsAre("c.yaml:9:7: unknown key 'hedaer' in source 'x'.signature (did you "
                            "mean 'header'?)",
                            "c.yaml:7:18: source 'x'.signature.algorithm: 'sha265' is not one of "
                            "sha1, sha256, sha512 (did you mean 'sha256'?)",
                            "c.yaml:8:17: source 'x'.signature.encoding: 'hexa' is not one of "
                            "hex, base64 (did you mean 'hex'?)"));
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, secret: \"${env:S}\", "
                           "signature: {algorithm: sha1}}\n"),
                ElementsAre(HasSubstr("source 'x'.signature: `header:` is required")));
}

TEST(ConfigForges, GenericSignedContentIsChecked) {
    const auto errors = errors_for(R"(sources:
  x:
    provider: generic
    secret: "${env:S}"
    signature: {header: X-Sig, content: "{timstamp}.{body}"}
  y:
    provider: generic
    secret: "${env:S}"
    signature: {header: X-Sig, timestamp_header: X-Time}
  z:
    provider: generic
    secret: "${env:S}"
    signature: {header: X-Sig, content: "{delivery_id}{body}{body}"}
)");
    EXPECT_THAT(errors,
                ElementsAre("c.yaml:5:42: source 'x'.signature.content: unknown placeholder "
                            "'{timstamp}' (did you mean '{timestamp}'?); use {body}, "
                            "{timestamp} or {delivery_id}",
                            HasSubstr("source 'y'.signature.content: the timestamp must be "
                                      "signed"),
                            HasSubstr("source 'z'.signature.content: '{delivery_id}{body}{body}' "
                                      "must contain {body} exactly once"),
                            HasSubstr("source 'z'.signature.content: {delivery_id} needs "
                                      "`delivery_id:` to name a header")));
}

TEST(ConfigForges, GenericEventAndDeliveryIdPlaces) {
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, insecure: true, "
                           "event: \"payload.\", delivery_id: \"X Request\"}\n"),
                ElementsAre(HasSubstr("source 'x'.event: 'payload.' is not a payload field "
                                      "path"),
                            HasSubstr("source 'x'.delivery_id: 'X Request' is neither a header "
                                      "name nor a payload field")));
}

TEST(ConfigForges, SignatureHeaderIsNeverRecordedAsAnotherHeader) {
    EXPECT_THAT(errors_for("sources:\n  x: {provider: generic, secret: \"${env:S}\", "
                           "event: X-Sig, signature: {header: x-sig}}\n"),
                ElementsAre(HasSubstr("the signature header x-sig is also named as the event")));
}

TEST(ConfigForges, NoCredentialNamesTheAlternatives) {
    EXPECT_THAT(errors_for("sources:\n  b: {provider: bitbucket-server}\n"),
                ElementsAre("c.yaml:2:3: source 'b': no secret configured; set one (a reference "
                            "such as ${env:NAME}) or an `authorization` value or say `insecure: "
                            "true` to accept unsigned deliveries"));
}

}  // namespace
}  // namespace hookrelay::config
