//! A statement's answer: its rows encoded as they come, within its
//! deadline, and its end recorded once they are done, cut short, or left
//! unread (a closed portal or cursor, a cancel, a connection gone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_pg::datatypes::encode_recordbatch;
use datafusion::arrow::array::RecordBatch;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion_postgres::arrow_pg;
use futures::{Stream, StreamExt, stream};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use strata_query::QuerySession;
use strata_query::query_log::{End, Ending, QueryRecord};

use crate::Backend;
use crate::statements::{code_of, pg_error};

/// A statement running, its first batch taken.
pub(crate) struct Started {
    pub session: QuerySession,
    pub plan: Arc<dyn ExecutionPlan>,
    pub first: Option<RecordBatch>,
    pub rest: SendableRecordBatchStream,
}

/// What the end of an answer records, and holds until then.
pub(crate) struct Finish {
    pub backend: Arc<dyn Backend>,
    pub record: QueryRecord,
    pub received: Instant,
    /// The principal's slot, held until the answer ends.
    pub _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Finish {
    fn end(&self, ending: Ending, rows: u64, bytes_scanned: u64) -> Vec<u8> {
        self.record.end_lines(&End {
            ending,
            rows,
            bytes_scanned,
            duration_ms: self.received.elapsed().as_secs_f64() * 1e3,
        })
    }
}

/// The answer's rows, encoded as they come; once they are done (or cut
/// short) the statement's end is recorded before the stream ends, and a
/// client that stops reading (a closed portal, a cancel) records it as
/// cancelled.
pub(crate) fn answer(
    fields: Arc<Vec<pgwire::api::results::FieldInfo>>,
    started: Started,
    deadline: Instant,
    finish: Finish,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let Started {
        session,
        plan,
        first,
        rest,
    } = started;
    let rows = Arc::new(AtomicU64::new(0));
    let cut: Arc<Mutex<Option<String>>> = Arc::default();
    let batches = stream::iter(first.map(Ok)).chain(rest);
    let timed = stream::unfold(Box::pin(batches), move |mut batches| async move {
        match tokio::time::timeout_at(deadline.into(), batches.next()).await {
            Ok(next) => next.map(|batch| (batch, batches)),
            Err(_) => Some((
                Err(datafusion::error::DataFusionError::Execution(
                    "canceling statement due to statement timeout".into(),
                )),
                batches,
            )),
        }
    });
    let (counted, noted) = (rows.clone(), cut.clone());
    let encoded = timed
        .map(move |batch| match batch {
            Ok(batch) => stream::iter(encode_recordbatch(fields.clone(), batch)).left_stream(),
            Err(e) => {
                *noted.lock().expect("cut lock") = Some(e.to_string());
                stream::iter([Err(pg_error(code_of(&e), &e.to_string()))]).right_stream()
            }
        })
        .flatten()
        .inspect(move |row| {
            if row.is_ok() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        })
        // A cut answer stops at its error.
        .scan(false, |stopped, row| {
            let go = !*stopped;
            *stopped |= row.is_err();
            futures::future::ready(go.then_some(row))
        });
    let guard = Cancelled {
        finish: Some(finish),
        rows: rows.clone(),
    };
    let ending = stream::once(async move {
        let mut guard = guard;
        let finish = guard.finish.take().expect("finished once");
        let ending = match cut.lock().expect("cut lock").take() {
            Some(why) => Ending::CutShort(why),
            None => Ending::Answered,
        };
        let bytes = session.stats(&plan).bytes_scanned as u64;
        let lines = finish.end(ending, rows.load(Ordering::Relaxed), bytes);
        if let Err(why) = finish.backend.record(lines).await {
            tracing::error!(
                "the end of query {} was not recorded: {why}",
                finish.record.query_id
            );
        }
        None
    })
    .filter_map(futures::future::ready);
    encoded.chain(ending)
}

/// Records an answer its client stopped reading as cancelled.
struct Cancelled {
    finish: Option<Finish>,
    rows: Arc<AtomicU64>,
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        let Some(finish) = self.finish.take() else {
            return;
        };
        let lines = finish.end(Ending::Cancelled, self.rows.load(Ordering::Relaxed), 0);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(why) = finish.backend.record(lines).await {
                    tracing::error!("a cancelled query was not recorded: {why}");
                }
            });
        }
    }
}
