//! The vocabulary of events: families, actions, roles, apps, tables and
//! severities, with the weights they are drawn with.

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Access,
    DataUsage,
    Technical,
}

impl Family {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Family::Access => "access",
            Family::DataUsage => "data_usage",
            Family::Technical => "technical",
        }
    }
}

pub(super) const FAMILIES: [(Family, u32); 3] = [
    (Family::Access, 40),
    (Family::DataUsage, 45),
    (Family::Technical, 15),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Action {
    Login,
    Logout,
    LoginFailed,
    VpnConnect,
    VpnDisconnect,
    SessionTimeout,
    PrivilegeEscalation,
    AdminOp,
    DbConnect,
    AppAccess,
    Read,
    Query,
    Export,
    Download,
    Upload,
    Update,
    Delete,
    Transmit,
    Error,
    Warning,
    ServiceStart,
    ServiceStop,
    IncidentOpened,
    IncidentResolved,
    ConfigChange,
    SecurityAlert,
    NetworkEvent,
}

impl Action {
    pub(super) fn as_str(self) -> &'static str {
        use Action::*;
        match self {
            Login => "login",
            Logout => "logout",
            LoginFailed => "login_failed",
            VpnConnect => "vpn_connect",
            VpnDisconnect => "vpn_disconnect",
            SessionTimeout => "session_timeout",
            PrivilegeEscalation => "privilege_escalation",
            AdminOp => "admin_action",
            DbConnect => "db_connect",
            AppAccess => "app_access",
            Read => "read",
            Query => "query",
            Export => "export",
            Download => "download",
            Upload => "upload",
            Update => "update",
            Delete => "delete",
            Transmit => "transmit",
            Error => "error",
            Warning => "warning",
            ServiceStart => "service_start",
            ServiceStop => "service_stop",
            IncidentOpened => "incident_opened",
            IncidentResolved => "incident_resolved",
            ConfigChange => "config_change",
            SecurityAlert => "security_alert",
            NetworkEvent => "network_event",
        }
    }
}

pub(super) const ACCESS_ACTIONS: [(Action, u32); 10] = [
    (Action::Login, 28),
    (Action::Logout, 24),
    (Action::LoginFailed, 8),
    (Action::VpnConnect, 8),
    (Action::VpnDisconnect, 7),
    (Action::SessionTimeout, 5),
    (Action::PrivilegeEscalation, 1),
    (Action::AdminOp, 3),
    (Action::DbConnect, 6),
    (Action::AppAccess, 10),
];

pub(super) const DATA_ACTIONS: [(Action, u32); 8] = [
    (Action::Read, 35),
    (Action::Query, 25),
    (Action::Export, 6),
    (Action::Download, 6),
    (Action::Upload, 4),
    (Action::Update, 16),
    (Action::Delete, 3),
    (Action::Transmit, 5),
];

pub(super) const TECH_ACTIONS: [(Action, u32); 9] = [
    (Action::Error, 25),
    (Action::Warning, 30),
    (Action::ServiceStart, 6),
    (Action::ServiceStop, 6),
    (Action::IncidentOpened, 4),
    // Most resolutions are scheduled by their opening (see `due_incident`);
    // these few close incidents opened before the generated range.
    (Action::IncidentResolved, 1),
    (Action::ConfigChange, 8),
    (Action::SecurityAlert, 5),
    (Action::NetworkEvent, 12),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Agent,
    Supervisor,
    QaAnalyst,
    Admin,
    Dba,
    Service,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::QaAnalyst => "qa_analyst",
            Role::Admin => "admin",
            Role::Dba => "dba",
            Role::Service => "service",
        }
    }

    /// Prefix of the user names in this role's pool (service accounts are
    /// named from `SERVICE_ACCOUNTS` instead).
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "sup",
            Role::QaAnalyst => "qa",
            Role::Admin => "admin",
            Role::Dba => "dba",
            Role::Service => "svc",
        }
    }
}

pub(super) const SERVICE_ACCOUNTS: [&str; 6] = [
    "svc-etl",
    "svc-crm-sync",
    "svc-backup",
    "svc-ivr",
    "svc-report",
    "svc-monitor",
];

/// Who performs interactive sign-ins and everyday record work.
pub(super) const INTERACTIVE_ROLES: [(Role, u32); 5] = [
    (Role::Agent, 76),
    (Role::Supervisor, 10),
    (Role::QaAnalyst, 8),
    (Role::Admin, 3),
    (Role::Dba, 3),
];
pub(super) const BULK_ROLES: [(Role, u32); 5] = [
    (Role::Agent, 50),
    (Role::Supervisor, 25),
    (Role::QaAnalyst, 10),
    (Role::Admin, 5),
    (Role::Dba, 10),
];
pub(super) const DB_ROLES: [(Role, u32); 3] =
    [(Role::Dba, 50), (Role::Service, 40), (Role::Admin, 10)];
pub(super) const DELETE_ROLES: [(Role, u32); 4] = [
    (Role::Agent, 40),
    (Role::Supervisor, 20),
    (Role::Admin, 20),
    (Role::Dba, 20),
];
/// A share of escalations by agents is what an auditor wants to find.
pub(super) const ESCALATION_ROLES: [(Role, u32); 2] = [(Role::Admin, 70), (Role::Agent, 30)];
pub(super) const CONFIG_ROLES: [(Role, u32); 3] =
    [(Role::Admin, 60), (Role::Dba, 20), (Role::Service, 20)];

pub(super) const APPS: [&str; 8] = [
    "crm",
    "ivr",
    "billing",
    "claims",
    "hr-portal",
    "vpn",
    "sso",
    "warehouse",
];
pub(super) const DATA_APPS: [(&str, u32); 6] = [
    ("crm", 35),
    ("claims", 20),
    ("billing", 15),
    ("hr-portal", 8),
    ("warehouse", 12),
    ("ivr", 10),
];
pub(super) const USER_APPS: [&str; 5] = ["crm", "claims", "billing", "hr-portal", "ivr"];
pub(super) const TABLES: [&str; 8] = [
    "payments",
    "customers",
    "call_records",
    "claims",
    "agent_kpi",
    "pii_contacts",
    "invoices",
    "audit_log",
];
pub(super) const DATABASES: [&str; 4] = ["dwh-prod", "billing-db", "claims-db", "crm-replica"];
pub(super) const COUNTRIES: [&str; 8] = ["IN", "PH", "US", "GB", "ZA", "MX", "PL", "CO"];
pub(super) const CHANNELS: [&str; 4] = ["voice", "chat", "email", "sms"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// One level up, used when an action fails.
    pub(super) fn bump(self) -> Severity {
        match self {
            Severity::Debug => Severity::Info,
            Severity::Info => Severity::Notice,
            Severity::Notice => Severity::Warning,
            Severity::Warning => Severity::Error,
            Severity::Error | Severity::Critical => Severity::Critical,
        }
    }
}
