//! The shell around `tenure-core`: storage, the writer, HTTP.
//!
//! `Application::build` is the one entry point: `main` and every test start exactly the
//! same thing (tests on port 0 with a fresh database).

pub mod admin;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod openapi;
pub mod predictions;
pub mod risk;
pub mod routes;
pub mod serve;
pub mod tasks;
pub mod throttle;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use tenure_core::time::{Clock, Millis};
use tenure_store::{DatabaseUrl, Store};
use tokio::net::TcpListener;

use crate::auth::KeyChecker;
use crate::writer::{Engines, Ingestor};

/// The wall clock, for the shell only; the core gets time passed in.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        jiff::Timestamp::now().as_millisecond()
    }
}

#[derive(Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    pub listen: SocketAddr,
    pub clock: Arc<dyn Clock>,
    /// Retrain each workspace's churn-risk model when it is this many days old (checked
    /// hourly, docs/risk.md); `Some(0)`: only on demand. With `Some`, a model another process
    /// stored is installed within a minute; `None` starts no schedule at all.
    pub risk_retrain_days: Option<u32>,
    /// Connection, timeout and load limits (docs/security.md).
    pub limits: serve::Limits,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engines: Engines,
    pub ingestor: Ingestor,
    pub keys: KeyChecker,
    pub clock: Arc<dyn Clock>,
    pub predictions: predictions::PredictionCache,
    pub risk: risk::RiskModels,
    /// Logged-in dashboard sessions.
    pub sessions: dashboard::session::Sessions,
    /// Long work registered as tasks (`GET /v1/tasks/{id}`).
    pub tasks: tasks::Tasks,
    /// The writer's handle for background threads, which hold it weakly: dropped with the
    /// last handler, so the writer can stop (and those threads with it).
    pub alive: Arc<Ingestor>,
}

/// Storage, engines and the writer, without HTTP: what `serve`, `import` and `demo` share.
pub struct Core {
    pub store: Store,
    pub engines: Engines,
    pub ingestor: Ingestor,
    writer: std::thread::JoinHandle<()>,
}

impl Core {
    /// Opens (and migrates) the database, folds every workspace's log, starts the writer,
    /// on the wall clock.
    pub fn open(database: &DatabaseUrl) -> Result<Core, tenure_store::StoreError> {
        Self::open_with_clock(database, Arc::new(SystemClock))
    }

    /// The same, with the clock segment timers and membership events are stamped by.
    pub fn open_with_clock(
        database: &DatabaseUrl,
        clock: Arc<dyn Clock>,
    ) -> Result<Core, tenure_store::StoreError> {
        let store = Store::open(database.clone())?;
        let engines = Engines::new(store.clone());
        let loaded = engines.load_all()?;
        tracing::info!(
            workspaces = loaded,
            database = database.backend_name(),
            "engines loaded"
        );
        let (ingestor, writer) = Ingestor::start(&store, engines.clone(), clock)?;
        Ok(Core {
            store,
            engines,
            ingestor,
            writer,
        })
    }

    /// Stops the writer once every other handle to it is gone and everything queued is
    /// committed.
    pub fn close(self) {
        drop(self.ingestor);
        let _ = self.writer.join();
    }
}

pub struct Application {
    port: u16,
    listener: TcpListener,
    router: axum::Router,
    limits: serve::Limits,
    writer: std::thread::JoinHandle<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let database = settings.database.clone();
        let clock = settings.clock.clone();
        let core =
            tokio::task::spawn_blocking(move || Core::open_with_clock(&database, clock)).await??;
        Self::from_core(core, settings).await
    }

    /// Serves an already opened core (the demo loads its data first, then serves).
    pub async fn from_core(core: Core, settings: Settings) -> anyhow::Result<Application> {
        let Core {
            store,
            engines,
            ingestor,
            writer,
        } = core;
        let alive = Arc::new(ingestor.clone());
        // `Some(0)`: no retraining, but models stored by `tenure risk train` still reach the
        // segments; `None` (tests): no schedule at all.
        if let Some(days) = settings.risk_retrain_days {
            risk::start_schedule(
                store.clone(),
                engines.clone(),
                settings.clock.clone(),
                days,
                Arc::downgrade(&alive),
            );
        }
        let state = AppState {
            keys: KeyChecker::new(store.clone()),
            risk: risk::RiskModels::new(store.clone()),
            alive,
            store,
            engines,
            ingestor,
            clock: settings.clock,
            predictions: predictions::PredictionCache::default(),
            sessions: dashboard::session::Sessions::default(),
            tasks: tasks::Tasks::default(),
        };
        let router = axum::Router::new()
            .merge(routes::health::router())
            .merge(routes::health_scores::router())
            .merge(routes::health_models::router())
            .merge(routes::ingest::router())
            .merge(routes::customers::router())
            .merge(routes::metrics::router())
            .merge(routes::segments::router())
            .merge(routes::risk::router())
            .merge(routes::workspace::router())
            .merge(routes::tasks::router())
            .merge(routes::keys::router())
            .merge(dashboard::router())
            .with_state(state);
        let router = router.layer(axum::middleware::from_fn_with_state(
            throttle::AuthThrottle::default(),
            throttle::throttle_failed_auth,
        ));
        let router = serve::limited(router, &settings.limits);
        let listener = TcpListener::bind(settings.listen).await?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            port,
            listener,
            router,
            limits: settings.limits,
            writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until Ctrl-C / SIGTERM, then lets the writer commit what is queued.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = serve::serve(self.listener, self.router, self.limits, shutdown_signal()).await;
        // Every handle to the writer was in the router's state, now dropped.
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        served
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
