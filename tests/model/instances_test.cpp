// Instances sharing a store that send one Jenkins name's triggers to different servers.
#include <hookrelay/store.hpp>

#include <gtest/gtest.h>

namespace hookrelay {
namespace {

InstanceInfo instance(std::string id, std::map<std::string, std::string> jenkins) {
    InstanceInfo i;
    i.id = std::move(id);
    i.jenkins = std::move(jenkins);
    return i;
}

TEST(JenkinsDisagreements, OneLinePerNameNamingEachUrlAndItsInstances) {
    const std::vector<InstanceInfo> instances = {
        instance("relay-a", {{"ci", "http://jenkins:8080/"}, {"nightly", "http://n/"}}),
        instance("relay-c", {{"ci", "http://staging:8080/"}, {"nightly", "http://n/"}}),
        instance("relay-b", {{"ci", "http://jenkins:8080/"}, {"extra", "http://x/"}}),
    };
    const auto found = jenkins_disagreements(instances);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found.at("ci"),
              "jenkins ci is http://jenkins:8080/ on relay-a, relay-b but http://staging:8080/ "
              "on relay-c");
}

TEST(JenkinsDisagreements, InstancesThatDidNotSayAndNamesOnlySomeHaveAreLeftOut) {
    // An instance of an older version says nothing; a name another instance lacks sends none of
    // its triggers there (`status` lists it as not-configured when it has open ones).
    const std::vector<InstanceInfo> instances = {
        instance("old", {}),
        instance("relay-a", {{"ci", "http://jenkins:8080/"}}),
        instance("relay-b", {{"ci", "http://jenkins:8080/"}, {"extra", "http://x/"}}),
    };
    EXPECT_TRUE(jenkins_disagreements(instances).empty());
    EXPECT_TRUE(jenkins_disagreements({}).empty());
}

}  // namespace
}  // namespace hookrelay
