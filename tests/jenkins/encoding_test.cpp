#include "jenkins/encoding.hpp"
#include "jenkins/client.hpp"

#include <gtest/gtest.h>

namespace hookrelay::jenkins {
namespace {

using Kind = JenkinsOutcome::Kind;

TEST(JobPath, FoldersAreJobPairs) {
    EXPECT_EQ(job_path({"acme", "app"}), "job/acme/job/app/");
    EXPECT_EQ(job_path({"single"}), "job/single/");
    EXPECT_EQ(job_path({}), "");
}

TEST(JobPath, BranchWithSlashIsNameEncodedThenPercentEncoded) {
    // Branch "feature/x" is the item named "feature%2Fx" (reference §0.13, §2).
    EXPECT_EQ(job_path({"acme", "app", "feature/x"}), "job/acme/job/app/job/feature%252Fx/");
}

TEST(JobPath, SpacesAndReservedCharactersArePercentEncoded) {
    EXPECT_EQ(job_path({"my job"}), "job/my%20job/");
    EXPECT_EQ(job_path({"a;b"}), "job/a%3Bb/");  // a raw ';' is a 400 (§1.1)
    EXPECT_EQ(job_path({"a+b&c=d"}), "job/a%2Bb%26c%3Dd/");
    EXPECT_EQ(job_path({"keep-._~Az09"}), "job/keep-._~Az09/");
}

TEST(JobPath, NameEncoderCharactersAreDoubleEncoded) {
    EXPECT_EQ(job_path({"#1"}), "job/%25231/");
    EXPECT_EQ(job_path({"100%"}), "job/100%2525/");
    EXPECT_EQ(job_path({"what?"}), "job/what%253F/");
    EXPECT_EQ(job_path({"[x]"}), "job/%255Bx%255D/");
    EXPECT_EQ(job_path({"a\\b"}), "job/a%255Cb/");
}

TEST(JobPath, UnicodeIsEncodedBytewise) {
    EXPECT_EQ(job_path({"caf\xC3\xA9"}), "job/caf%C3%A9/");
    EXPECT_EQ(job_path({"\xE6\x97\xA5/\xE6\x9C\xAC"}), "job/%E6%97%A5%252F%E6%9C%AC/");
}

TEST(JobPath, DotAndEmptyNamesAreEscaped) {
    EXPECT_EQ(job_path({""}), "job/%2500/");
    EXPECT_EQ(job_path({"."}), "job/%252E/");
    EXPECT_EQ(job_path({".."}), "job/%252E./");
    EXPECT_EQ(job_path({"..."}), "job/.../");
}

TEST(NameEncode, MatchesBranchApi) {
    EXPECT_EQ(name_encode("feature/x"), "feature%2Fx");
    EXPECT_EQ(name_encode("#%/?[]\\"), "%23%25%2F%3F%5B%5D%5C");
    EXPECT_EQ(name_encode("plain-name"), "plain-name");
    EXPECT_EQ(name_encode(""), "%00");
    EXPECT_EQ(name_encode("."), "%2E");
}

TEST(Classify, ReferenceTable) {
    EXPECT_EQ(classify(201), Kind::queued);
    EXPECT_EQ(classify(303), Kind::merged);
    EXPECT_EQ(classify(302), Kind::refused);
    for (int s : {400, 403, 404, 405, 409, 410, 413, 422, 499}) {
        EXPECT_EQ(classify(s), Kind::permanent) << s;
    }
    EXPECT_EQ(classify(500), Kind::server_error);
    for (int s : {502, 503, 504}) EXPECT_EQ(classify(s), Kind::unavailable) << s;
}

TEST(Classify, UnauthorizedIsAuthFailedNotPermanent) {
    EXPECT_EQ(classify(401), Kind::auth_failed);
}

TEST(Classify, TooManyRequestsIsThrottledNotPermanent) {
    EXPECT_EQ(classify(429), Kind::throttled);
}

TEST(Classify, OtherStatuses) {
    EXPECT_EQ(classify(0), Kind::unavailable);
    EXPECT_EQ(classify(100), Kind::unavailable);
    for (int s : {200, 202, 204}) EXPECT_EQ(classify(s), Kind::permanent) << s;
    for (int s : {301, 304, 307, 308}) EXPECT_EQ(classify(s), Kind::permanent) << s;
    EXPECT_EQ(classify(501), Kind::permanent);
    EXPECT_EQ(classify(505), Kind::permanent);
    for (int s : {520, 522, 524, 598, 599}) EXPECT_EQ(classify(s), Kind::unavailable) << s;
    for (int s : {506, 507, 511}) EXPECT_EQ(classify(s), Kind::server_error) << s;
    EXPECT_EQ(classify(600), Kind::permanent);
    EXPECT_EQ(classify(-1), Kind::permanent);
}

TEST(Classify, KindNames) {
    EXPECT_EQ(to_string(Kind::queued), "queued");
    EXPECT_EQ(to_string(Kind::merged), "merged");
    EXPECT_EQ(to_string(Kind::refused), "refused");
    EXPECT_EQ(to_string(Kind::permanent), "permanent");
    EXPECT_EQ(to_string(Kind::server_error), "server_error");
    EXPECT_EQ(to_string(Kind::throttled), "throttled");
    EXPECT_EQ(to_string(Kind::unavailable), "unavailable");
    EXPECT_EQ(to_string(Kind::auth_failed), "auth_failed");
}

}  // namespace
}  // namespace hookrelay::jenkins
