// Replays fuzz inputs without libFuzzer, so the normal (GCC) build and ctest keep every corpus
// file, and every crash once found, passing. Usage: fuzz_<name>_replay <file-or-dir>...
// Every file named, and every regular file directly inside every directory named (in name order),
// is passed once to LLVMFuzzerTestOneInput. Exits 1 when an argument cannot be read or nothing
// was replayed; a failing input crashes the process as it would crash the fuzzer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool replay(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::cerr << "cannot read " << file.string() << '\n';
        return false;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    // The name first: when the input crashes, the last line printed says which one it was.
    std::cerr << "replaying " << file.string() << " (" << bytes.size() << " bytes)\n";
    // An empty vector's data() may be null; libFuzzer never passes null.
    static const std::uint8_t empty = 0;
    LLVMFuzzerTestOneInput(
        bytes.empty() ? &empty : reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t replayed = 0;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg(argv[i]);
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            std::vector<fs::path> files;
            for (const auto& entry : fs::directory_iterator(arg, ec)) {
                if (entry.is_regular_file()) files.push_back(entry.path());
            }
            if (ec) {
                std::cerr << "cannot list " << arg.string() << ": " << ec.message() << '\n';
                return 1;
            }
            std::sort(files.begin(), files.end());
            for (const auto& file : files) {
                if (!replay(file)) return 1;
                ++replayed;
            }
        } else {
            if (!replay(arg)) return 1;
            ++replayed;
        }
    }
    std::cerr << "replayed " << replayed << " inputs\n";
    return replayed > 0 ? 0 : 1;
}
