//! Logging in: the user is a principal's name and the password its token.
//! Over TLS the token is sent as is (PostgreSQL's cleartext password, which
//! every driver speaks); without TLS only SCRAM-SHA-256 is offered, which
//! never sends it. When the server has TLS, a connection without it is
//! refused before anything else.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use strata_access::Authenticated;
use strata_access::scram::{self, Exchange, Verifier};

use crate::{Backend, Login};

/// Where a connection's login stands.
enum Step {
    /// Waiting for the startup message.
    Start,
    /// Waiting for the token in cleartext (over TLS).
    Cleartext,
    /// Waiting for SCRAM's first message.
    ScramFirst,
    /// Waiting for SCRAM's final message; `principal` is `None` for an
    /// unknown user, whose exchange runs to its end and fails.
    ScramFinal(Box<(Exchange, Option<Authenticated>)>),
    /// Logged in.
    Done,
}

/// One connection's login.
pub(crate) struct Startup {
    backend: Arc<dyn Backend>,
    connections: Arc<ConnectionManager>,
    pids: Arc<dyn PidSecretKeyGenerator>,
    tls_required: bool,
    /// Set once logged in.
    login: Arc<OnceLock<Login>>,
    step: Mutex<Step>,
}

impl Startup {
    /// A login through `backend` that sets `login`; cancel requests find
    /// the connection through `connections`.
    pub fn new(
        backend: Arc<dyn Backend>,
        connections: Arc<ConnectionManager>,
        pids: Arc<dyn PidSecretKeyGenerator>,
        tls_required: bool,
        login: Arc<OnceLock<Login>>,
    ) -> Startup {
        Startup {
            backend,
            connections,
            pids,
            tls_required,
            login,
            step: Mutex::new(Step::Start),
        }
    }
}

fn refused(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

fn user_of(client: &impl ClientInfo) -> String {
    client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.tls_required && !client.is_secure() {
                    return Err(refused(
                        "28000",
                        "this server takes TLS connections only (sslmode=require)".into(),
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let (ask, next) = if client.is_secure() {
                    (Authentication::CleartextPassword, Step::Cleartext)
                } else {
                    let mechanisms = vec![scram::MECHANISM.to_string()];
                    (Authentication::SASL(mechanisms), Step::ScramFirst)
                };
                *self.step.lock().expect("login lock") = next;
                client
                    .send(PgWireBackendMessage::Authentication(ask))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let step =
                    std::mem::replace(&mut *self.step.lock().expect("login lock"), Step::Done);
                let user = user_of(client);
                match step {
                    Step::Cleartext => {
                        let token = message.into_password()?.password;
                        let principal = self.backend.login(&user, &token);
                        let principal = principal.ok_or(PgWireError::InvalidPassword(user))?;
                        self.finish(client, principal).await?;
                    }
                    Step::ScramFirst => {
                        let first = message.into_sasl_initial_response()?;
                        if first.auth_method != scram::MECHANISM {
                            return Err(refused(
                                "28000",
                                format!("{} is not offered", first.auth_method),
                            ));
                        }
                        let data = first.data.unwrap_or_default();
                        let text = String::from_utf8_lossy(&data);
                        // An unknown user goes through the same exchange (with
                        // a verifier of nothing) so that it cannot be told apart.
                        let (verifier, principal) = match self.backend.scram_login(&user) {
                            Some((verifier, principal)) => (verifier, Some(principal)),
                            None => (Verifier::new(""), None),
                        };
                        let (exchange, server_first) = Exchange::start(verifier, &text)
                            .map_err(|e| refused("28000", e.to_string()))?;
                        *self.step.lock().expect("login lock") =
                            Step::ScramFinal(Box::new((exchange, principal)));
                        let next = Authentication::SASLContinue(server_first.into_bytes().into());
                        client
                            .send(PgWireBackendMessage::Authentication(next))
                            .await?;
                    }
                    Step::ScramFinal(waiting) => {
                        let (exchange, principal) = *waiting;
                        let last = message.into_sasl_response()?;
                        let text = String::from_utf8_lossy(&last.data);
                        let server_final = exchange.finish(&text);
                        let (Ok(server_final), Some(principal)) = (server_final, principal) else {
                            return Err(PgWireError::InvalidPassword(user));
                        };
                        let last = Authentication::SASLFinal(server_final.into_bytes().into());
                        client
                            .feed(PgWireBackendMessage::Authentication(last))
                            .await?;
                        self.finish(client, principal).await?;
                    }
                    Step::Start | Step::Done => {
                        return Err(refused("08P01", "unexpected password message".into()));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Startup {
    /// Logs the connection in as `principal` and tells the client so.
    async fn finish<C>(&self, client: &mut C, principal: Authenticated) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !principal.role.may_query() {
            return Err(refused(
                "42501",
                format!(
                    "principal `{}` has role `{}`, which may not run SQL",
                    principal.name,
                    principal.role.as_str()
                ),
            ));
        }
        let (pid, secret_key) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        // Cancel requests find the connection by its pid and key.
        let (handle, guard) = self.connections.register(pid, secret_key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        let login = Login {
            session_id: format!("pg-{pid}-{}", client.socket_addr().port()),
            peer: client.socket_addr(),
            principal,
        };
        let _ = self.login.set(login);
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        finish_authentication(client, &parameters).await
    }
}
