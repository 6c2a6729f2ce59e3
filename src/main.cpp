#include "app/app.hpp"

int main(int argc, char** argv) {
    return hookrelay::app::run_cli(argc, argv);
}
