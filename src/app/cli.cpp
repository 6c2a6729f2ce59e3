#include "app/app.hpp"

#include "app/admin_client.hpp"
#include "app/runtime.hpp"
#include "app/webhook.hpp"
#include "ingest/ingest.hpp"

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
    out << fmt::format("{}: OK ({} source(s), {} jenkins, {} rule(s))\n", config_path,
                       c.sources.size(), c.jenkins.size(), c.rules.size());
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
        err << "no source named '" << options.source << "' in " << options.config_path << '\n';
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
    if (!prepared.event) {
        report["status"] = prepared.status;
        report["error"] = prepared.log_reason;
        out << boost::json::serialize(report) << '\n';
        return 1;
    }
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
    out << boost::json::serialize(report) << '\n';
    return 0;
}

int run_cli(int argc, char** argv) {
    CLI::App cli{
        "hookrelay: verifies Git forge webhooks, matches them against rules and "
        "triggers Jenkins jobs"};
    cli.set_version_flag("--version", std::string("hookrelay ") + HOOKRELAY_VERSION);
    cli.require_subcommand(1);

    DaemonOptions daemon;
    auto* run = cli.add_subcommand("run", "Run the daemon in the foreground");
    run->add_option("-c,--config", daemon.config_path, "Config file")->required();
    run->add_option("--ready-file", daemon.ready_file,
                    "Write 'http=<host>:<port>' here once listening");
    run->add_option("--log-level", daemon.log_level, "Override log.level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

    std::string check_path;
    auto* check = cli.add_subcommand("check", "Validate a config file and exit");
    check->add_option("-c,--config", check_path, "Config file")->required();

    ExplainOptions explain;
    auto* ex = cli.add_subcommand(
        "explain", "Dry-run one delivery: print the event, each rule's decision and the triggers");
    ex->add_option("-c,--config", explain.config_path, "Config file")->required();
    ex->add_option("--source", explain.source, "Source name from the config")->required();
    ex->add_option("--body", explain.body_file, "File with the request body")->required();
    ex->add_option("--header", explain.headers, "A request header, 'Name: value' (repeatable)");
    ex->add_option("--headers-file", explain.headers_file,
                   "File with one 'Name: value' header per line");

    auto run_admin_command = add_admin_commands(cli);

    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return cli.exit(e);
    }
    if (const int rc = run_admin_command(); rc >= 0) return rc;
    if (*run) return run_daemon(daemon);
    if (*check) return run_check(check_path, std::cout, std::cerr);
    if (*ex) return run_explain(explain, std::cout, std::cerr);
    return 2;
}

}  // namespace hookrelay::app
