// The pure judgement of a job's api/json answer for a rule trigger (src/jenkins/check.hpp).
#include "jenkins/check.hpp"

#include <gtest/gtest.h>

namespace hookrelay::jenkins {
namespace {

JobCheck trigger(std::vector<std::string> parameters) {
    JobCheck c;
    c.rule = "branches";
    c.job = {"acme", "app"};
    c.job_text = "acme/app";
    c.job_where = {10, 12};
    int line = 11;
    for (auto& p : parameters) c.parameters.emplace_back(std::move(p), Location{line++, 20});
    return c;
}

JobFacts job(std::vector<std::string> parameters, bool buildable = true) {
    JobFacts f;
    f.klass = "hudson.model.FreeStyleProject";
    f.buildable = buildable;
    f.parameters = std::move(parameters);
    return f;
}

TEST(JobCheckParse, ReadsBuildableAndDeclaredParameters) {
    const auto facts = parse_job(
        R"({"_class":"org.jenkinsci.plugins.workflow.job.WorkflowJob","buildable":false,)"
        R"("property":[{"_class":"x.Other"},{"_class":"hudson.model.ParametersDefinitionProperty",)"
        R"("parameterDefinitions":[{"name":"GIT_COMMIT","type":"StringParameterDefinition"},)"
        R"({"name":"DEPLOY","type":"BooleanParameterDefinition"}]}]})");
    ASSERT_TRUE(facts);
    EXPECT_EQ(facts->klass, "org.jenkinsci.plugins.workflow.job.WorkflowJob");
    EXPECT_EQ(facts->buildable, false);
    EXPECT_EQ(facts->parameters, (std::vector<std::string>{"GIT_COMMIT", "DEPLOY"}));
}

TEST(JobCheckParse, FolderHasNoBuildable) {
    const auto facts = parse_job(R"({"_class":"com.cloudbees.hudson.plugins.folder.Folder"})");
    ASSERT_TRUE(facts);
    EXPECT_FALSE(facts->buildable.has_value());
    EXPECT_TRUE(facts->parameters.empty());
}

TEST(JobCheckParse, RejectsAnswerThatIsNotAnObject) {
    EXPECT_FALSE(parse_job("<html>login</html>"));
    EXPECT_FALSE(parse_job("[1]"));
}

TEST(JobCheck, DeclaredParametersAreFine) {
    EXPECT_TRUE(job_findings(trigger({"GIT_COMMIT"}), job({"GIT_COMMIT", "BRANCH"}), "ci").empty());
}

TEST(JobCheck, UndeclaredParameterSuggestsTheNearMissAtItsPosition) {
    const auto found =
        job_findings(trigger({"GIT_COMMIT", "BRANHC"}), job({"GIT_COMMIT", "BRANCH"}), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].where.line, 12);
    EXPECT_NE(found[0].message.find("parameter 'BRANHC' is not declared by job 'acme/app' on "
                                    "jenkins ci (did you mean 'BRANCH'?)"),
              std::string::npos)
        << found[0].message;
    EXPECT_NE(found[0].message.find("drops undeclared parameters silently"), std::string::npos);
}

TEST(JobCheck, UndeclaredParameterWithoutNearMissHasNoSuggestion) {
    const auto found = job_findings(trigger({"COLOUR"}), job({"GIT_COMMIT"}), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].message.find("did you mean"), std::string::npos) << found[0].message;
}

TEST(JobCheck, ParameterDifferingOnlyInCaseIsANearMiss) {
    // Jenkins matches parameter names case-sensitively: "sha" is dropped when "SHA" is declared.
    EXPECT_EQ(closest_parameter("sha", {"BRANCH", "SHA"}), "SHA");
    const auto found = job_findings(trigger({"sha"}), job({"SHA"}), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NE(found[0].message.find("(did you mean 'SHA'?)"), std::string::npos);
}

TEST(JobCheck, ParameterlessTriggerToParameterizedJob) {
    const auto found = job_findings(trigger({}), job({"GIT_COMMIT"}), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].where.line, 10);
    EXPECT_NE(found[0].message.find("is parameterized (GIT_COMMIT), but the trigger sends no "
                                    "parameters"),
              std::string::npos)
        << found[0].message;
}

TEST(JobCheck, ParametersToUnparameterizedJob) {
    const auto found = job_findings(trigger({"A", "B"}), job({}), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].where.line, 10);
    EXPECT_NE(found[0].message.find("declares no parameters, but the trigger sends A, B"),
              std::string::npos)
        << found[0].message;
}

TEST(JobCheck, DisabledJobIsReported) {
    const auto found = job_findings(trigger({}), job({}, /*buildable=*/false), "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NE(found[0].message.find("is not buildable"), std::string::npos) << found[0].message;
}

TEST(JobCheck, FolderIsNotAJob) {
    JobFacts folder;
    folder.klass = "com.cloudbees.hudson.plugins.folder.Folder";
    const auto found = job_findings(trigger({"A"}), folder, "ci");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NE(found[0].message.find("is not a job that can be built (it is a "
                                    "com.cloudbees.hudson.plugins.folder.Folder)"),
              std::string::npos)
        << found[0].message;
}

}  // namespace
}  // namespace hookrelay::jenkins
