// Throwaway TLS material for tests. TestCertificates and make_test_certificates() are declared
// in fake_jenkins.hpp (next to the server that uses them) and defined in test_ca.cpp.
#pragma once

#include "fakes/fake_jenkins.hpp"
