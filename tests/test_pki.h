// A throwaway certificate authority for TLS tests: an EC P-256 CA and leaf
// certificates it signs, written as PEM files (keys mode 0600, as sluice demands).
// Header-only so unit and integration tests share it.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace sluice::test_pki {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

inline KeyPtr new_key() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) throw std::runtime_error("EC key generation failed");
  return KeyPtr(key, EVP_PKEY_free);
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) throw std::runtime_error("bad certificate extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, signed by issuer (self-signed when null).
// `san`: subjectAltName value ("DNS:localhost,IP:127.0.0.1"), empty for none.
inline CertPtr make_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                                const std::string& san, long valid_days = 30, bool is_ca = false) {
  CertPtr cert(X509_new(), X509_free);
  static long serial = 1;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  add_extension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (is_ca) add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!san.empty()) add_extension(cert.get(), signer, NID_subject_alt_name, san.c_str());
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0)
    throw std::runtime_error("certificate signing failed");
  return cert;
}

inline void write_pem(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

inline void write_pem(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  chmod(path.c_str(), 0600);
}

// A CA and the files a server needs, under `dir`:
//   ca.crt, server.crt (CN and SAN: localhost, 127.0.0.1), server.key.
struct Pki {
  std::string dir;
  std::string ca_file, cert_file, key_file;
  KeyPtr ca_key{nullptr, EVP_PKEY_free};
  CertPtr ca_cert{nullptr, X509_free};

  explicit Pki(const std::string& directory, const std::string& ca_name = "sluice test CA") : dir(directory) {
    ca_key = new_key();
    ca_cert = make_certificate(ca_key.get(), ca_name, nullptr, nullptr, "", 30, true);
    ca_file = dir + "/ca.crt";
    write_pem(ca_file, ca_cert.get());
    issue("server", "localhost", "DNS:localhost,IP:127.0.0.1");
  }

  // Writes NAME.crt and NAME.key signed by this CA; the server files point to the
  // last one issued under the name "server".
  void issue(const std::string& file_name, const std::string& common_name, const std::string& san,
             long valid_days = 30) {
    KeyPtr key = new_key();
    CertPtr cert = make_certificate(key.get(), common_name, ca_cert.get(), ca_key.get(), san, valid_days);
    const std::string crt = dir + "/" + file_name + ".crt";
    const std::string pem_key = dir + "/" + file_name + ".key";
    write_pem(crt, cert.get());
    write_pem(pem_key, key.get());
    if (file_name == "server") {
      cert_file = crt;
      key_file = pem_key;
    }
  }
};

}  // namespace sluice::test_pki
