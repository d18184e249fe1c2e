// policy's side of protocol::StatementGate: one PolicyGates per shard owns the
// shard's Engine (parse tree, decision cache); each session gets a small gate that
// holds its Subject and asks the engine.
#pragma once

#include <memory>

#include "policy/engine.h"
#include "protocol/statement_gate.h"

namespace sluice::policy {

class PolicyGates : public protocol::StatementGateFactory {
 public:
  explicit PolicyGates(std::shared_ptr<const Policy> policy) : engine_(std::move(policy)) {}

  // A reloaded policy: the next statement of every session is judged by it.
  void install(std::shared_ptr<const Policy> policy) { engine_.install(std::move(policy)); }
  bool enabled() const { return engine_.policy().enabled; }
  // Where sessions learn which columns are masked for them (null: none are).
  void set_protected_columns_source(ProtectedColumnsSource* source) { protected_source_ = source; }
  Engine& engine() { return engine_; }

  std::unique_ptr<protocol::StatementGate> open(const std::string& user, const std::vector<std::string>& groups,
                                                const protocol::Target& target, protocol::ErrorInfo& refusal) override;

 private:
  Engine engine_;
  ProtectedColumnsSource* protected_source_ = nullptr;
};

// The search_path value sent to PostgreSQL for these schema names: each quoted as
// an identifier when it needs to be ("$user" always is).
std::string search_path_value(const std::vector<std::string>& schemas);

}  // namespace sluice::policy
