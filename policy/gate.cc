#include "policy/gate.h"

#include "core/log.h"

namespace sluice::policy {

namespace {

bool plain_identifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

class SessionGate : public protocol::StatementGate {
 public:
  SessionGate(Engine& engine, Subject subject, AccessMode mode, std::vector<std::string> configured_path,
              ProtectedColumnsSource* protected_source)
      : engine_(engine),
        subject_(std::move(subject)),
        mode_(mode),
        configured_path_(std::move(configured_path)),
        protected_source_(protected_source) {}

  bool judge(std::string_view sql, protocol::ErrorInfo& refusal, protocol::Verdict& verdict) override {
    refresh_protected_columns();
    const Decision& d = engine_.judge(subject_, sql);
    if (protected_source_ && (d.changes_schema || d.rule == "masking-unknown-relation"))
      protected_source_->invalidate(subject_.target);
    verdict = {engine_.policy().enabled ? action_name(d.action) : "unjudged", d.rule, d.group};
    if (d.allowed()) return true;
    refusal.severity = "ERROR";
    refusal.sqlstate = d.sqlstate;
    refusal.message = d.message;
    refusal.hint = d.hint;
    refusal.position = d.position > 0 ? std::to_string(d.position) : std::string();
    LOG_DEBUG("policy: %s user \"%s\" on \"%s\": rule \"%s\"%s%s", core_action(d), subject_.user.c_str(),
              subject_.target.c_str(), d.rule.c_str(), d.group.empty() ? "" : " of group ", d.group.c_str());
    return false;
  }

  bool allow_function_call(protocol::ErrorInfo& refusal, protocol::Verdict& verdict) override {
    if (!engine_.policy().enabled) return true;
    if (mode_ == AccessMode::admin) {
      verdict = {"allow", "fastpath-admin", ""};
      return true;
    }
    verdict = {"block", "fastpath", ""};
    refusal.severity = "ERROR";
    refusal.sqlstate = "42501";
    refusal.message =
        "statement blocked by sluice policy: fastpath function calls (FunctionCall messages, used by libpq's "
        "large-object functions) name a function by OID, which sluice cannot judge";
    refusal.hint = "call the function in a SQL statement instead; only groups with admin access may use the fastpath";
    return false;
  }

  uint32_t max_statement_message_bytes() const override {
    // A Parse carries up to 65535 parameter type OIDs and a statement name besides the text.
    return engine_.policy().limits.max_statement_bytes + (512u << 10);
  }

  void backend_parameters(std::vector<std::pair<std::string, std::string>>& parameters) const override {
    parameters.emplace_back("standard_conforming_strings", "on");
    parameters.emplace_back("client_encoding", "UTF8");
    parameters.emplace_back("search_path", search_path_value(configured_path_));
    if (mode_ == AccessMode::read_only) parameters.emplace_back("default_transaction_read_only", "on");
  }

 private:
  static const char* core_action(const Decision& d) { return action_name(d.action); }

  void refresh_protected_columns() {
    if (!protected_source_) return;
    const uint64_t version = protected_source_->version();
    if (version == protected_version_) return;
    protected_version_ = version;
    subject_.protected_columns = protected_source_->protected_columns(subject_.target, subject_.groups);
  }

  Engine& engine_;
  Subject subject_;
  AccessMode mode_;
  std::vector<std::string> configured_path_;
  ProtectedColumnsSource* protected_source_;
  uint64_t protected_version_ = 0;
};

}  // namespace

std::string search_path_value(const std::vector<std::string>& schemas) {
  std::string out;
  for (const std::string& schema : schemas) {
    if (!out.empty()) out += ", ";
    if (plain_identifier(schema)) {
      out += schema;
      continue;
    }
    out += '"';
    for (char c : schema) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out;  // empty: an empty search_path
}

std::unique_ptr<protocol::StatementGate> PolicyGates::open(const std::string& user, const std::vector<std::string>& groups,
                                                           const protocol::Target& target, protocol::ErrorInfo& refusal) {
  Subject subject;
  subject.user = user;
  subject.groups = groups;
  subject.target = target.name;
  for (const std::string& schema : target.search_path) subject.search_path.push_back(schema == "$user" ? target.user : schema);
  const Admission admission = engine_.admit(subject);
  if (!admission.allowed) {
    refusal.severity = "FATAL";
    refusal.sqlstate = "42501";
    refusal.message = admission.refusal;
    refusal.hint = "ask the gateway's operator to add a group that lists this target to your user";
    return nullptr;
  }
  return std::make_unique<SessionGate>(engine_, std::move(subject), admission.mode, target.search_path,
                                       protected_source_);
}

}  // namespace sluice::policy
