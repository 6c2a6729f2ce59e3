// The fake Jenkins (tests/fakes) as a standalone process, for tests that run hookrelay somewhere
// a C++ test cannot reach into: scripts/container-test.sh starts it on the host and points the
// container's hookrelay at it.
//
//   hookrelay_fake_jenkins --port-file F --requests-file R [--user U] [--api-token T]
//                          [--job a/b/c[:PARAM,PARAM]]...
//
// Binds 127.0.0.1 on a free port and writes it to F once it listens; appends one line per request
// it received to R ("<status> <method> <target>", flushed at once); exits 0 on SIGTERM or SIGINT.
#include "fakes/fake_jenkins.hpp"

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// How long one wait for the next request lasts before the loop looks at the stop flag again.
constexpr std::chrono::milliseconds k_poll{100};

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
    g_stop = 1;
}

std::vector<std::string> split(const std::string& text, char by) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string part; std::getline(in, part, by);) out.push_back(part);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    hookrelay::test::FakeJenkins::Options options;
    std::string port_file, requests_file;
    std::vector<std::string> jobs;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--port-file") {
            port_file = value;
        } else if (key == "--requests-file") {
            requests_file = value;
        } else if (key == "--user") {
            options.user = value;
        } else if (key == "--api-token") {
            options.api_token = value;
        } else if (key == "--job") {
            jobs.push_back(value);
        } else {
            std::cerr << "unknown option " << key << '\n';
            return 2;
        }
    }
    if (port_file.empty() || requests_file.empty() || argc % 2 == 0) {
        std::cerr << "usage: hookrelay_fake_jenkins --port-file F --requests-file R [--user U] "
                     "[--api-token T] [--job a/b/c[:P1,P2]]...\n";
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    hookrelay::test::FakeJenkins jenkins(options);
    for (const auto& job : jobs) {
        const auto colon = job.find(':');
        jenkins.add_job(split(job.substr(0, colon), '/'), colon == std::string::npos
                                                              ? std::vector<std::string>{}
                                                              : split(job.substr(colon + 1), ','));
    }
    std::ofstream requests(requests_file, std::ios::app);
    {
        const auto tmp = port_file + ".tmp";
        std::ofstream(tmp) << jenkins.port() << '\n';
        std::rename(tmp.c_str(), port_file.c_str());  // readers never see a partial file
    }
    std::size_t written = 0;
    while (g_stop == 0) {
        jenkins.wait_for_requests(written + 1, k_poll);
        const auto all = jenkins.requests();
        for (; written < all.size(); ++written) {
            const auto& r = all[written];
            requests << r.status << ' ' << r.method << ' ' << r.target << std::endl;
        }
    }
    jenkins.stop();
    return 0;
}
