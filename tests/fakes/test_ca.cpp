#include "fakes/test_ca.hpp"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace hookrelay::test {

namespace {

struct KeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CertFree {
    void operator()(X509* p) const { X509_free(p); }
};
struct ExtFree {
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct FileClose {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("make_test_certificates: ") + what);
}

Key make_key() {
    Key key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen failed");
    return key;
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
    check(ext != nullptr, "X509V3_EXT_conf_nid failed");
    check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext failed");
}

// issuer == nullptr: self-signed.
Cert make_certificate(EVP_PKEY* key, const char* common_name, bool ca, X509* issuer,
                      EVP_PKEY* issuer_key) {
    Cert cert(X509_new());
    check(cert != nullptr, "X509_new failed");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version failed");

    unsigned char serial_bytes[8];
    check(RAND_bytes(serial_bytes, sizeof serial_bytes) == 1, "RAND_bytes failed");
    serial_bytes[0] &= 0x7F;  // positive
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
        BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr), &BN_free);
    check(serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())),
          "serial number");

    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2L * 86400) != nullptr, "notAfter");
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey failed");

    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("hookrelay tests"), -1,
                                     -1, 0) == 1,
          "subject O");
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                     0) == 1,
          "subject CN");
    X509* signer = issuer != nullptr ? issuer : cert.get();
    check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer name");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &ctx, NID_basic_constraints,
                  ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert.get(), &ctx, NID_key_usage,
                  ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (!ca) {
        add_extension(cert.get(), &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
        add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
    }
    check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign failed");
    return cert;
}

std::unique_ptr<std::FILE, FileClose> open_for_writing(const std::string& path) {
    std::unique_ptr<std::FILE, FileClose> file(std::fopen(path.c_str(), "wb"));
    check(file != nullptr, "cannot open an output file");
    return file;
}

void write_certificate(const std::string& path, X509* cert) {
    auto file = open_for_writing(path);
    check(PEM_write_X509(file.get(), cert) == 1, "PEM_write_X509 failed");
}

void write_key(const std::string& path, EVP_PKEY* key) {
    auto file = open_for_writing(path);
    check(PEM_write_PrivateKey(file.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_PrivateKey failed");
}

}  // namespace

TestCertificates make_test_certificates(const std::string& dir) {
    std::filesystem::create_directories(dir);
    const auto ca_key = make_key();
    const auto ca =
        make_certificate(ca_key.get(), "hookrelay test CA", true, nullptr, ca_key.get());
    const auto server_key = make_key();
    const auto server =
        make_certificate(server_key.get(), "127.0.0.1", false, ca.get(), ca_key.get());

    const std::filesystem::path base(dir);
    TestCertificates out{(base / "ca.pem").string(), (base / "server.pem").string(),
                         (base / "server-key.pem").string()};
    write_certificate(out.ca_file, ca.get());
    write_certificate(out.cert_file, server.get());
    write_key(out.key_file, server_key.get());
    return out;
}

}  // namespace hookrelay::test
