//! A real S3 server for tests and benches: `s3s-fs` serving a folder over
//! HTTP on loopback, in the calling process. Included by path
//! (`#[path = ...] mod s3_server;`) from `tests/s3.rs` and
//! `benches/s3_ingest.rs`.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};

/// `s3s-fs` with S3's promise for create-only writes: `s3s-fs` checks
/// `If-None-Match: *` and then writes, so two racing creates of one key could
/// both succeed; S3 makes the check and the write one step. Conditional
/// writes are serialised here, so that racing catalog commits see what
/// they would see on S3: one wins, the others get `412 Precondition Failed`.
///
/// Listing a prefix also starts at the prefix's folder: `s3s-fs` walks the
/// whole bucket for every list, which made each command's few small lists
/// cost seconds once an archive had thousands of files.
struct CreateOnce {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
    creating: tokio::sync::Mutex<()>,
}

impl CreateOnce {
    /// For a conditional write, the lock that makes it one step.
    async fn turn(&self, conditional: bool) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match conditional {
            true => Some(self.creating.lock().await),
            false => None,
        }
    }

    /// The objects of `bucket` under `prefix` (no delimiter), sorted, after
    /// `after`, at most `max_keys`; and whether more follow.
    fn list_prefix(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max_keys: usize,
    ) -> (Vec<Object>, bool) {
        let bucket_root = self.root.join(bucket);
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        let mut pending = vec![bucket_root.join(folder)];
        let mut objects = Vec::new();
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    pending.push(path);
                    continue;
                }
                let key = path.strip_prefix(&bucket_root).expect("under the bucket");
                let key = key.to_string_lossy().replace('\\', "/");
                if key.starts_with(prefix) && after.is_none_or(|after| key.as_str() > after) {
                    objects.push(Object {
                        key: Some(key),
                        size: Some(meta.len() as i64),
                        last_modified: meta.modified().ok().map(Timestamp::from),
                        ..Default::default()
                    });
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let truncated = objects.len() > max_keys;
        objects.truncate(max_keys);
        (objects, truncated)
    }
}

/// Implements [`S3`] for [`CreateOnce`]: the named operations go to `s3s-fs`
/// unchanged, conditional writes one at a time. (A macro around the whole
/// impl, so that `async_trait` sees the expanded methods.)
macro_rules! create_once {
    ($($op:ident: $input:ident => $output:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl S3 for CreateOnce {
            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.fs.$op(req).await
            })*

            async fn list_objects_v2(
                &self,
                req: S3Request<ListObjectsV2Input>,
            ) -> S3Result<S3Response<ListObjectsV2Output>> {
                let input = req.input;
                let (None, Some(prefix)) = (&input.delimiter, &input.prefix) else {
                    return self.fs.list_objects_v2(S3Request { input, ..req }).await;
                };
                let after = input.continuation_token.as_deref().or(input.start_after.as_deref());
                let max_keys = input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
                let (objects, truncated) = self.list_prefix(&input.bucket, prefix, after, max_keys);
                let next = objects.last().and_then(|o| o.key.clone()).filter(|_| truncated);
                Ok(S3Response::new(ListObjectsV2Output {
                    key_count: Some(objects.len() as i32),
                    max_keys: Some(max_keys as i32),
                    is_truncated: Some(truncated),
                    contents: Some(objects),
                    continuation_token: input.continuation_token.clone(),
                    next_continuation_token: next,
                    name: Some(input.bucket.clone()),
                    prefix: input.prefix.clone(),
                    ..Default::default()
                }))
            }

            async fn put_object(
                &self,
                req: S3Request<PutObjectInput>,
            ) -> S3Result<S3Response<PutObjectOutput>> {
                let _turn = self.turn(req.input.if_none_match.is_some()).await;
                self.fs.put_object(req).await
            }

            async fn complete_multipart_upload(
                &self,
                req: S3Request<CompleteMultipartUploadInput>,
            ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
                let _turn = self.turn(req.input.if_none_match.is_some()).await;
                self.fs.complete_multipart_upload(req).await
            }
        }
    };
}

create_once! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    get_object: GetObjectInput => GetObjectOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
}

/// Serves `root` (one folder per bucket) as S3 on a free loopback port,
/// accepting only the credentials `key` and `secret`.
pub async fn start_s3(root: &Path, key: &str, secret: &str) -> SocketAddr {
    let mut builder = S3ServiceBuilder::new(CreateOnce {
        fs: s3s_fs::FileSystem::new(root).expect("s3s-fs root"),
        root: root.to_path_buf(),
        creating: Default::default(),
    });
    builder.set_auth(SimpleAuth::from_single(key, secret));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener address");
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            // Without it, Nagle's algorithm and delayed ACKs hold small
            // responses ~40 ms: a latency no S3 endpoint has.
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(conn);
        }
    });
    addr
}
