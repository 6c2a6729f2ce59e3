#include "app/app.hpp"

#include "app/admin_client.hpp"
#include "app/cli_docs.hpp"
#include "app/discovery.hpp"
#include "app/online_check.hpp"
#include "app/runtime.hpp"
#include "app/webhook.hpp"
#include "config/lease.hpp"
#include "forge_status/status_client.hpp"
#include "ingest/ingest.hpp"
#include "store/factory.hpp"

#include <hookrelay/version.hpp>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace hookrelay::app {

int run_check(const std::string& config_path, std::ostream& out, std::ostream& err) {
    auto loaded = load_runtime(config_path);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) err << to_string(e) << '\n';
        err << loaded.errors.size() << (loaded.errors.size() == 1 ? " error" : " errors") << " in "
            << config_path << '\n';
        return 1;
    }
    const auto& c = *loaded.runtime->config;
    // What the store would refuse at start, where it can be told without connecting.
    if (const auto problem = store::config_problem(c); !problem.empty()) {
        err << config_path << ": " << problem << '\n' << "1 error in " << config_path << '\n';
        return 1;
    }
    out << fmt::format("{}: OK ({} source(s), {} jenkins, {} rule(s))\n", config_path,
                       c.sources.size(), c.jenkins.size(), c.rules.size());
    // Valid, but the daemon would warn at start: said here too, before a deployment.
    if (auto warning = claim_lease_warning(c.dispatch, c.server.store_timeout); !warning.empty()) {
        err << "warning: " << warning << '\n';
    }
    if (auto clash = listeners_clash(c); !clash.empty()) {
        err << "warning: " << clash
            << ": the daemon cannot listen on both (unless systemd passes the webhook socket, "
               "when `listen` does not apply)\n";
    }
    for (const auto& source : c.sources) {
        if (auto doubt = forge_status::api_url_doubt(source); !doubt.empty()) {
            err << "warning: " << doubt << '\n';
        }
    }
    return 0;
}

namespace {

bool read_file(const std::string& path, std::string& out, std::ostream& err) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        err << "cannot read " << path << '\n';
        return false;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    out = buffer.str();
    return true;
}

bool add_header_line(std::string_view line, HeaderMap& headers, std::ostream& err) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    if (line.empty()) return true;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        err << "a header must look like 'Name: value', not '" << line << "'\n";
        return false;
    }
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.add(std::string(line.substr(0, colon)), std::string(value));
    return true;
}

std::string text(const boost::json::value* v) {
    if (v == nullptr || v->is_null()) return "";
    if (v->is_string()) return std::string(v->get_string());
    return boost::json::serialize(*v);
}

std::string field(const boost::json::object& o, std::string_view key) {
    return text(o.if_contains(key));
}

// The explain report for people: the event's key facts, one line per rule, then the triggers
// with their rendered parameters. --json prints the report itself.
void print_explain(const boost::json::object& report, std::ostream& out) {
    out << "source " << field(report, "source") << "; signature " << field(report, "signature")
        << '\n';
    if (const auto* error = report.if_contains("error")) {
        out << "rejected (" << field(report, "status") << "): " << text(error) << '\n';
        return;
    }
    // One block per event: a Bitbucket push of several refs is several events.
    std::vector<const boost::json::object*> events;
    if (const auto* all = report.if_contains("events"); all && all->is_array()) {
        for (const auto& e : all->as_array()) events.push_back(&e.as_object());
    } else {
        events.push_back(&report.at("event").as_object());
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& event = *events[i];
        out << (events.size() > 1 ? fmt::format("\nevent #{}: ", i) : std::string("\nevent "))
            << field(event, "event");
        if (auto a = field(event, "action"); !a.empty()) out << " (" << a << ')';
        out << "  forge event " << field(event, "forge_event") << '\n';
        const auto& repo = event.at("repository").as_object();
        out << fmt::format("  repository  {}\n", field(repo, "full_name"));
        for (const char* key : {"ref", "branch", "tag", "commit", "actor"}) {
            if (auto v = field(event, key); !v.empty()) out << fmt::format("  {:<11} {}\n", key, v);
        }
        if (const auto* pr = event.if_contains("pull_request"); pr && pr->is_object()) {
            const auto& p = pr->as_object();
            out << fmt::format("  pull req.   #{} {} -> {} (head {})\n", field(p, "number"),
                               field(p, "source_branch"), field(p, "target_branch"),
                               field(p, "head_sha"));
        }
    }
    if (const auto* decision = report.if_contains("decision")) {
        out << '\n' << text(decision) << '\n';
        return;
    }
    const auto& rules = report.at("rules").as_array();
    std::size_t width = 4;
    for (const auto& r : rules) width = std::max(width, field(r.as_object(), "name").size());
    out << '\n' << fmt::format("{:<{}}  {}\n", "RULE", width, "DECISION");
    for (const auto& r : rules) {
        const auto& o = r.as_object();
        const bool matched = o.at("matched").as_bool();
        const auto reason = field(o, "reason");
        const auto on =
            o.contains("event") ? fmt::format(" (event #{})", field(o, "event")) : std::string();
        out << fmt::format("{:<{}}  {}{}\n", field(o, "name"), width,
                           matched ? std::string("matched") : "no: " + reason, on);
    }
    const auto& triggers = report.at("triggers").as_array();
    out << '\n'
        << (triggers.empty() ? std::string("no triggers would be queued")
                             : fmt::format("{} trigger(s) would be queued:", triggers.size()))
        << '\n';
    for (const auto& t : triggers) {
        const auto& o = t.as_object();
        out << fmt::format("  rule {} -> jenkins {} job {}\n", field(o, "rule"),
                           field(o, "jenkins"), field(o, "job"));
        for (const auto& [k, v] : o.at("parameters").as_object()) {
            out << fmt::format("      {}={}\n", std::string_view(k), text(&v));
        }
    }
    for (const auto& f : report.at("failures").as_array()) {
        const auto& o = f.as_object();
        out << fmt::format("  rule {} could not render its trigger: {}\n", field(o, "rule"),
                           field(o, "reason"));
    }
}

}  // namespace

int run_explain(const ExplainOptions& options, std::ostream& out, std::ostream& err) {
    // A dry run: secrets are not resolved (they may exist only in production) and signatures
    // are not checked.
    config::LoadOptions load_options;
    load_options.resolve_secrets = false;
    auto loaded = load_runtime(options.config_path, load_options);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) err << to_string(e) << '\n';
        return 1;
    }
    const auto& runtime = *loaded.runtime;
    const auto* source = runtime.config->find_source(options.source);
    if (source == nullptr) {
        std::string known;
        for (const auto& s : runtime.config->sources) known += (known.empty() ? "" : ", ") + s.name;
        err << "no source named '" << options.source << "' in " << options.config_path
            << " (known: " << (known.empty() ? "none" : known) << ")\n";
        return 1;
    }
    std::string body;
    if (!read_file(options.body_file, body, err)) return 1;
    HeaderMap headers;
    if (!options.headers_file.empty()) {
        std::string text;
        if (!read_file(options.headers_file, text, err)) return 1;
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            if (!add_header_line(line, headers, err)) return 1;
        }
    }
    for (const auto& h : options.headers) {
        if (!add_header_line(h, headers, err)) return 1;
    }
    if (!headers.find("Content-Type")) {
        const bool form = body.starts_with("payload=");
        headers.add("Content-Type",
                    form ? "application/x-www-form-urlencoded" : "application/json");
    }

    auto prepared = prepare(runtime, *source, headers, body, /*verify=*/false);
    boost::json::object report{{"source", source->name},
                               {"signature", "not checked (explain is a dry run)"}};
    int rc = 0;
    if (!prepared.event) {
        report["status"] = prepared.status;
        report["error"] = prepared.log_reason;
        rc = 1;
    } else {
        report["event"] = to_json(*prepared.event);
        if (!prepared.more_events.empty()) {
            // A delivery with several events (a Bitbucket push of several refs): all of them, in
            // order; the rules and triggers below name theirs by index.
            boost::json::array events{to_json(*prepared.event)};
            for (const auto& e : prepared.more_events) events.push_back(to_json(e));
            report["events"] = std::move(events);
        }
        if (!prepared.record) {
            report["decision"] = "ping: answered 200, never triggers";
        } else {
            auto decision = decision_json(prepared.decision);
            report["rules"] = std::move(decision["rules"]);
            report["triggers"] = std::move(decision["triggers"]);
            report["failures"] = std::move(decision["failures"]);
        }
    }
    if (options.json) {
        out << boost::json::serialize(report) << '\n';
    } else {
        print_explain(report, out);
    }
    return rc;
}

int run_cli(int argc, char** argv) {
    CLI::App cli{
        "hookrelay: verifies Git forge webhooks, matches them against rules and "
        "triggers Jenkins jobs"};
    cli.name("hookrelay");
    cli.set_version_flag("--version", std::string("hookrelay ") + HOOKRELAY_VERSION);
    cli.require_subcommand(1);
    cli.footer(
        "Without --config, every command reads $HOOKRELAY_CONFIG, then "
        "/etc/hookrelay/hookrelay.yaml. Exit codes: 0 done, 1 failed, 2 usage error or daemon "
        "unreachable; run: 78 when the start was refused for the config or for a store it must "
        "not open (starting again changes nothing).");
    const std::string config_help =
        "Config file (default: $HOOKRELAY_CONFIG, then /etc/hookrelay/hookrelay.yaml)";

    DaemonOptions daemon;
    auto* run = cli.add_subcommand("run", "Run the daemon in the foreground");
    run->add_option("-c,--config", daemon.config_path, config_help);
    run->add_option("--ready-file", daemon.ready_file,
                    "Write 'http=<host>:<port>' here once listening");
    run->add_option("--log-level", daemon.log_level, "Override log.level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

    std::string check_path;
    bool check_online = false;
    auto* check = cli.add_subcommand("check", "Validate a config file and exit");
    check->add_option("-c,--config", check_path, config_help);
    check->add_flag("--online", check_online,
                    "Also check it against each Jenkins: credentials, jobs, parameters");

    std::string jenkins_path, jenkins_name;
    auto* jenkins_cmd = cli.add_subcommand("jenkins", "Jenkins tools");
    jenkins_cmd->require_subcommand(1);
    auto* jenkins_test = jenkins_cmd->add_subcommand(
        "test", "Check the config against a Jenkins (or every one): credentials, jobs, parameters");
    jenkins_test->add_option("name", jenkins_name, "The jenkins entry (default: every one)");
    jenkins_test->add_option("-c,--config", jenkins_path, config_help);

    ExplainOptions explain;
    auto* ex = cli.add_subcommand(
        "explain", "Dry-run one delivery: print the event, each rule's decision and the triggers");
    ex->add_option("-c,--config", explain.config_path, config_help);
    ex->add_option("--source", explain.source, "Source name from the config")->required();
    ex->add_option("--body", explain.body_file, "File with the request body")->required();
    ex->add_option("--header", explain.headers, "A request header, 'Name: value' (repeatable)");
    ex->add_option("--headers-file", explain.headers_file,
                   "File with one 'Name: value' header per line");
    ex->add_flag("--json", explain.json, "Print the report as JSON instead of a table");

    auto run_admin_command = add_admin_commands(cli);

    std::string generate_what;
    auto* generate = cli.add_subcommand(
        "generate", "Print the man page (man) or the bash completion script (bash-completion)");
    generate->add_option("what", generate_what, "man | bash-completion")
        ->required()
        ->check(CLI::IsMember({"man", "bash-completion"}));
    generate->group("");  // for packagers: not listed in --help

    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with code 0; every real parse error is a usage
        // error, exit 2 as documented (CLI11's own codes are 105, 106, 109, ...).
        return cli.exit(e) == 0 ? 0 : 2;
    }
    if (const int rc = run_admin_command(); rc >= 0) return rc;
    if (*generate) {
        if (generate_what == "man") {
            write_man_page(cli, std::cout);
        } else {
            write_bash_completion(cli, std::cout);
        }
        return 0;
    }
    auto config_or_usage = [](std::string& path) {
        auto found = discover_config(path);
        if (!found) {
            std::cerr << "hookrelay: " << no_config_message() << '\n';
            return false;
        }
        path = *found;
        return true;
    };
    if (*run) {
        if (!config_or_usage(daemon.config_path)) return 2;
        return run_daemon(daemon);
    }
    if (*check) {
        if (!config_or_usage(check_path)) return 2;
        if (check_online) return run_online_check(check_path, "", std::cout, std::cerr);
        return run_check(check_path, std::cout, std::cerr);
    }
    if (*jenkins_test) {
        if (!config_or_usage(jenkins_path)) return 2;
        return run_online_check(jenkins_path, jenkins_name, std::cout, std::cerr);
    }
    if (*ex) {
        if (!config_or_usage(explain.config_path)) return 2;
        return run_explain(explain, std::cout, std::cerr);
    }
    return 2;
}

}  // namespace hookrelay::app
