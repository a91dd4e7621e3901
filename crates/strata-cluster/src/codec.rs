//! Ballista's codecs with Strata's tables and scans: everything else is
//! left to Ballista's own codecs.
//!
//! A Strata table is sent as its kind and [`SnapshotPin`] (and, for a
//! server's `events`, the rows it holds that no file has yet, as Arrow IPC);
//! a scan as [`ArchiveScanExec`]'s pin and stores. Both start with a magic
//! line, so that they are never taken for Ballista's protobuf messages
//! (see [`crate::wire`]).

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};
use strata_keys::envelope::KeyProvider;
use strata_query::{
    ArchiveTable, ArchiveTableKind, PinnedTable, PseudonymTable, SnapshotPin, utc_date,
};

use crate::scan::ArchiveScanExec;
use crate::served::ServedArchive;
use crate::table::ClusterTable;
use crate::wire::{SCAN_MAGIC, TABLE_MAGIC, join, split};

/// What a table is sent as, before its buffered rows.
#[derive(Debug, Serialize, Deserialize)]
struct TableHeader {
    kind: ArchiveTableKind,
    pin: SnapshotPin,
}

/// The logical codec: clients encode their tables with it, schedulers
/// decode them into tables over the archive they serve.
#[derive(Debug, Default)]
pub struct StrataLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
    served: Option<Arc<ServedArchive>>,
}

impl StrataLogicalCodec {
    /// A client's codec, which only encodes.
    pub fn client() -> StrataLogicalCodec {
        StrataLogicalCodec::default()
    }

    /// The codec of a process serving `served`.
    pub fn serving(served: Arc<ServedArchive>) -> StrataLogicalCodec {
        StrataLogicalCodec {
            ballista: BallistaLogicalExtensionCodec::default(),
            served: Some(served),
        }
    }
}

impl LogicalExtensionCodec for StrataLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(rest) = buf.strip_prefix(TABLE_MAGIC) else {
            return (self.ballista).try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let served = self.served.clone().ok_or_else(|| {
            DataFusionError::Plan(format!(
                "table {table_ref} can only be read by a Strata scheduler (`strata cluster scheduler`)"
            ))
        })?;
        let (header, ipc): (TableHeader, &[u8]) = split(rest)?;
        let buffered = read_ipc(ipc)?;
        Ok(Arc::new(ClusterTable::new(
            header.kind,
            header.pin,
            schema,
            buffered,
            served,
        )))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if node.is::<PseudonymTable>() {
            return Err(DataFusionError::Plan(
                "an analyst's session cannot run on a cluster: its pseudonym secret stays on this server".into(),
            ));
        }
        let Some(table) = node.downcast_ref::<PinnedTable>() else {
            return self
                .ballista
                .try_encode_table_provider(table_ref, node, buf);
        };
        let buffered = (table.inner.downcast_ref::<ArchiveTable>())
            .map(|events| events.buffered())
            .unwrap_or_default();
        let header = TableHeader {
            kind: table.kind,
            pin: table.pin.clone(),
        };
        buf.extend_from_slice(TABLE_MAGIC);
        join(&header, buf)?;
        write_ipc(buffered, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        strata_udf(name).map_or_else(|| self.ballista.try_decode_udf(name, buf), Ok)
    }
}

/// The physical codec of schedulers and executors: an executor's holds the
/// keys its scans decrypt with.
#[derive(Debug)]
pub struct StrataPhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
    served: Arc<ServedArchive>,
    keys: Option<Arc<dyn KeyProvider>>,
}

impl StrataPhysicalCodec {
    /// The codec of a process serving `served`, decrypting with `keys`.
    pub fn new(served: Arc<ServedArchive>, keys: Option<Arc<dyn KeyProvider>>) -> Self {
        StrataPhysicalCodec {
            ballista: BallistaPhysicalExtensionCodec::default(),
            served,
            keys,
        }
    }
}

impl PhysicalExtensionCodec for StrataPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(rest) = buf.strip_prefix(SCAN_MAGIC) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let scan = ArchiveScanExec::decode(rest, ctx, self, &self.served, self.keys.clone())?;
        Ok(Arc::new(scan))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        // A Strata scan encodes itself (`ArchiveScanExec::try_to_proto`).
        self.ballista.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        strata_udf(name).map_or_else(|| self.ballista.try_decode_udf(name, buf), Ok)
    }
}

/// Strata's own scalar function named `name`: plans made in a Strata
/// session may call it (the UTC date rewrite), and it is sent by name.
fn strata_udf(name: &str) -> Option<Arc<ScalarUDF>> {
    let udf = utc_date();
    (udf.name() == name).then_some(udf)
}

/// Appends `batches` as an Arrow IPC stream (nothing for none).
fn write_ipc(batches: &[RecordBatch], buf: &mut Vec<u8>) -> Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let mut writer = StreamWriter::try_new(buf, &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

/// The batches [`write_ipc`] wrote.
fn read_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(bytes, None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
