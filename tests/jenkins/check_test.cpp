// The pure judgement of a job's api/json answer for a rule trigger (src/jenkins/check.hpp).
#include "jenkins/check.hpp"

#include "fakes/scripted_jenkins.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

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
    EXPECT_EQ(closest_name("sha", {"BRANCH", "SHA"}), "SHA");
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

// The plan of jenkins "ci" run against `jenkins` (unscripted reads answer 404); the findings.
std::vector<Finding> findings_of(test::ScriptedJenkins& jenkins, boost::asio::io_context& ioc,
                                 std::vector<JobCheck> checks) {
    CheckPlan plan;
    plan.jenkins = "ci";
    plan.jobs = std::move(checks);
    std::optional<CheckReport> report;
    boost::asio::co_spawn(ioc, check_jenkins(jenkins, std::move(plan)),
                          [&](std::exception_ptr, CheckReport r) { report = std::move(r); });
    ioc.run();
    return report ? report->findings : std::vector<Finding>{};
}

// Checking one complete job path; a second trigger of the same path reads nothing again.
std::vector<Finding> check_path(test::ScriptedJenkins& jenkins, boost::asio::io_context& ioc,
                                std::vector<std::string> job) {
    JobCheck c;
    c.rule = "r";
    c.job = std::move(job);
    c.job_text = c.job.empty() ? "" : c.job.front();
    c.job_where = {4, 9};
    return findings_of(jenkins, ioc, {c, c});
}

std::string items(std::vector<std::string> names) {
    std::string jobs;
    for (const auto& n : names) {
        jobs += (jobs.empty() ? "" : ",") +
                (R"({"_class":"hudson.model.FreeStyleProject","name":")" + n + R"("})");
    }
    return R"({"_class":"com.cloudbees.hudson.plugins.folder.Folder","jobs":[)" + jobs + "]}";
}

std::size_t reads_of(const test::ScriptedJenkins& jenkins, const std::string& path) {
    return static_cast<std::size_t>(std::count(jenkins.reads.begin(), jenkins.reads.end(), path));
}

// A scan's or a multibranch trigger's project (computed_folder): its class is read, and an
// ordinary job is a finding, since POST build on it queues a build instead of scanning.
std::vector<Finding> check_project(test::ScriptedJenkins& jenkins, boost::asio::io_context& ioc,
                                   std::vector<std::string> project) {
    JobCheck c;
    c.rule = "r";
    c.job = std::move(project);
    c.complete = false;
    c.computed_folder = true;
    c.job_text = "acme/plain (scan)";
    c.job_where = {4, 9};
    return findings_of(jenkins, ioc, {c});
}

TEST(JobCheckProject, AJobWhereAMultibranchProjectIsWantedIsAFinding) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("job/acme/job/plain/api/json?tree=_class,nextBuildNumber", 200,
                      R"({"_class":"hudson.model.FreeStyleProject","nextBuildNumber":3})");
    const auto found = check_project(jenkins, ioc, {"acme", "plain"});
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].where.line, 4);
    EXPECT_EQ(found[0].message,
              "rule r: 'acme/plain' on jenkins ci is a job (hudson.model.FreeStyleProject), not a "
              "multibranch project or organization folder: its triggers die without a scan (a "
              "scan request would queue a build of it)");
}

// Whatever plugin makes the computed folder, it exports no nextBuildNumber: no finding.
TEST(JobCheckProject, AnItemThatIsNoJobIsLeftToTheScan) {
    for (const std::string klass :
         {"org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
          "jenkins.branch.OrganizationFolder",
          "org.jenkinsci.plugins.pipeline.multibranch.defaults."
          "PipelineMultiBranchDefaultsProject"}) {
        boost::asio::io_context ioc;
        test::ScriptedJenkins jenkins(ioc.get_executor());
        jenkins.then_read("job/acme/job/mb/api/json?tree=_class,nextBuildNumber", 200,
                          R"({"_class":")" + klass + R"("})");
        EXPECT_TRUE(check_project(jenkins, ioc, {"acme", "mb"}).empty()) << klass;
    }
}

TEST(JobCheckMissing, NearMissInTheLastSegmentIsSuggested) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("job/acme/api/json?tree=jobs[name]", 200, items({"app", "docs"}));
    const auto found = check_path(jenkins, ioc, {"acme", "ap"});
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].where.line, 4);
    EXPECT_EQ(found[0].message,
              "rule r: job 'acme/ap' does not exist on jenkins ci: folder 'acme' has no item 'ap' "
              "(did you mean 'app'?)");
    EXPECT_EQ(found[1].message, found[0].message);
    EXPECT_EQ(reads_of(jenkins, "job/acme/api/json?tree=jobs[name]"), 1u);
    EXPECT_EQ(reads_of(jenkins, "api/json?tree=jobs[name]"), 0u);  // no need to look further up
}

TEST(JobCheckMissing, NearMissInAMiddleFolderIsFoundFromTheDeepestFolderThatExists) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("api/json?tree=jobs[name]", 200, items({"acme", "tools"}));
    jenkins.then_read("job/acme/api/json?tree=jobs[name]", 200, items({"services", "docs"}));
    const auto found = check_path(jenkins, ioc, {"acme", "servces", "api", "deploy"});
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].message,
              "rule r: job 'acme/servces/api/deploy' does not exist on jenkins ci: folder 'acme' "
              "has no item 'servces' (did you mean 'services'?)");
    // acme/servces/api and acme/servces answered 404: each read once, the root never.
    EXPECT_EQ(reads_of(jenkins, "job/acme/job/servces/job/api/api/json?tree=jobs[name]"), 1u);
    EXPECT_EQ(reads_of(jenkins, "job/acme/job/servces/api/json?tree=jobs[name]"), 1u);
    EXPECT_EQ(reads_of(jenkins, "job/acme/api/json?tree=jobs[name]"), 1u);
    EXPECT_EQ(reads_of(jenkins, "api/json?tree=jobs[name]"), 0u);
}

TEST(JobCheckMissing, TopLevelCaseOnlyDifferenceComesBeforeAnEditDistanceMatch) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    // "acne" and "Acme" are both one edit from "acme", "Acme" differs in case only.
    jenkins.then_read("api/json?tree=jobs[name]", 200, items({"acne", "Acme"}));
    const auto found = check_path(jenkins, ioc, {"acme", "app"});
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].message,
              "rule r: job 'acme/app' does not exist on jenkins ci: there is no top-level item "
              "'acme' (did you mean 'Acme'?)");
    EXPECT_EQ(reads_of(jenkins, "api/json?tree=jobs[name]"), 1u);
}

TEST(JobCheckMissing, NothingCloseListsUpToFiveItemsOfTheFolder) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("job/acme/api/json?tree=jobs[name]", 200,
                      items({"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}));
    const auto found = check_path(jenkins, ioc, {"acme", "website"});
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].message,
              "rule r: job 'acme/website' does not exist on jenkins ci: folder 'acme' has no item "
              "'website' (its items: alpha, beta, gamma, delta, epsilon and 2 more)");
}

TEST(JobCheckMissing, UnreadableFolderLeavesTheMessageAsItWas) {
    boost::asio::io_context ioc;
    test::ScriptedJenkins jenkins(ioc.get_executor());
    jenkins.then_read("job/acme/api/json?tree=jobs[name]", 403);
    const auto found = check_path(jenkins, ioc, {"acme", "ap"});
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].message, "rule r: job 'acme/ap' does not exist on jenkins ci");
}

TEST(JobCheckMissing, BelowAJobSaysItIsNotAFolder) {
    FolderItems job;
    job.klass = "hudson.model.FreeStyleProject";
    EXPECT_EQ(missing_item({"acme", "app"}, "main", job),
              "'acme/app' is not a folder (it is a hudson.model.FreeStyleProject)");
}

TEST(JobCheckMissing, ParsesItemNamesAndTellsAFolderFromAJob) {
    const auto folder = parse_items(items({"app", "docs"}));
    ASSERT_TRUE(folder);
    ASSERT_TRUE(folder->items);
    EXPECT_EQ(*folder->items, (std::vector<std::string>{"app", "docs"}));
    const auto job = parse_items(R"({"_class":"hudson.model.FreeStyleProject"})");
    ASSERT_TRUE(job);
    EXPECT_FALSE(job->items);
    EXPECT_FALSE(parse_items("<html/>"));
}

}  // namespace
}  // namespace hookrelay::jenkins
