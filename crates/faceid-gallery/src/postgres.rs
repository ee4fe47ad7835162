//! The PostgreSQL gallery: the same [`crate::GalleryStore`] contract as sled, for central servers
//! whose processes share one database.
//!
//! - Records are the same JSON as in sled; templates and images are sealed with the gallery
//!   key before they reach the database (the database never sees a clear template).
//! - Every write is one SQL transaction that first locks the single `faceid_head` row: the
//!   audit chain and the change feed advance in commit order across all processes.
//! - Each process keeps its own int8 index and float templates in memory, current from the
//!   change feed: a `NOTIFY faceid_changes` at each commit wakes every process's listener,
//!   and a catch-up every second covers a lost notification or connection.
//!
//! Calls are synchronous like sled's: they run on this gallery's own small runtime and the
//! caller's thread waits, so it can be used from any thread, async worker included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use faceid_core::Template;
use tokio_postgres::{Client, NoTls};

use crate::error::{Error, Result};
use crate::gallery::{AuditEvent, BiRecord, Candidate, DocumentId, KEY_CHECK, Sealer, Subject};
use crate::index::QuantizedIndex;
use crate::key::GalleryKey;
use crate::policy::{Backend, GalleryTx, TxBody};
use crate::store::Subjects;
use crate::sync::{Change, ChangeKind, PushOutcome, SyncEvent};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS faceid_head (
    id int PRIMARY KEY, audit_seq bigint NOT NULL, audit_hash text NOT NULL,
    change_seq bigint NOT NULL);
INSERT INTO faceid_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0)
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS faceid_meta (name text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS faceid_subjects (id text PRIMARY KEY, record text NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS faceid_subjects_document
    ON faceid_subjects (((record::jsonb) ->> 'document_tag'))
    WHERE ((record::jsonb) ->> 'document_tag') IS NOT NULL;
CREATE TABLE IF NOT EXISTS faceid_templates (
    tag bigint PRIMARY KEY,
    subject text NOT NULL REFERENCES faceid_subjects(id) ON DELETE CASCADE,
    sealed bytea NOT NULL);
CREATE INDEX IF NOT EXISTS faceid_templates_subject ON faceid_templates(subject);
CREATE TABLE IF NOT EXISTS faceid_images (
    subject text PRIMARY KEY REFERENCES faceid_subjects(id) ON DELETE CASCADE,
    sealed bytea NOT NULL);
CREATE TABLE IF NOT EXISTS faceid_audit (seq bigint PRIMARY KEY, event text NOT NULL);
CREATE TABLE IF NOT EXISTS faceid_changes (
    seq bigint PRIMARY KEY, kind text NOT NULL, subject text, origin text NOT NULL);
CREATE TABLE IF NOT EXISTS faceid_applied (event_id text PRIMARY KEY, outcome text NOT NULL);
CREATE TABLE IF NOT EXISTS faceid_bi (id bigserial PRIMARY KEY, date text NOT NULL, record text NOT NULL);
";

/// Connections kept per process.
const CONNECTIONS: usize = 4;
/// Catch-up period of the in-memory index when no notification arrives.
const CATCH_UP: Duration = Duration::from_secs(1);

fn db(e: tokio_postgres::Error) -> Error {
    // The message names the failing statement's error, never parameters.
    Error::Database(e.to_string())
}

/// Encodes a record for a JSON column; a value that cannot be encoded is an error, never
/// an empty record.
fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Encode(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(e.to_string()))
}

/// The JSON `record` column of every row `sql` selects, decoded.
async fn records<T: serde::de::DeserializeOwned>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<T>> {
    client
        .query(sql, params)
        .await
        .map_err(db)?
        .into_iter()
        .map(|r| parse(&r.get::<_, String>(0)))
        .collect()
}

fn template_location(tag: u64) -> Vec<u8> {
    crate::gallery::Gallery::template_location(tag)
}

fn image_location(id: &str) -> Vec<u8> {
    crate::gallery::Gallery::image_location(id)
}

/// What the in-memory index holds, and up to where in the change feed.
struct Memory {
    index: QuantizedIndex,
    templates: HashMap<u64, Template>,
    subjects: HashMap<String, Vec<u64>>,
    cursor: u64,
}

impl Memory {
    fn remove(&mut self, id: &str) {
        if let Some(tags) = self.subjects.remove(id) {
            for tag in tags {
                self.templates.remove(&tag);
            }
            self.index.remove_subject(id);
        }
    }

    fn add(&mut self, subject: &Subject, templates: Vec<Template>) {
        self.remove(&subject.id);
        let name: Arc<str> = Arc::from(subject.id.as_str());
        for (tag, template) in subject.template_tags.iter().zip(templates) {
            self.index.add(*tag, name.clone(), template.vector());
            self.templates.insert(*tag, template);
        }
        self.subjects
            .insert(subject.id.clone(), subject.template_tags.clone());
    }
}

struct Shared {
    clients: Vec<tokio::sync::Mutex<Client>>,
    next: AtomicUsize,
    sealer: Sealer,
    memory: RwLock<Memory>,
    catching_up: tokio::sync::Mutex<()>,
    search_threads: usize,
}

/// The PostgreSQL gallery. `Send + Sync`; share it behind an `Arc`.
pub struct PgGallery {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl std::fmt::Debug for PgGallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgGallery({} subjects)", Subjects::len(self))
    }
}

impl Drop for PgGallery {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this may run on an async thread, so let it go in the
        // background instead.
        if let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            runtime.shutdown_background();
        }
    }
}

/// The next write's audit and change positions, read under the head row's lock.
struct Head {
    audit_seq: u64,
    audit_hash: String,
    change_seq: u64,
}

/// One write transaction, holding the head lock.
struct Write<'a> {
    tx: tokio_postgres::Transaction<'a>,
    head: Head,
    changed: bool,
}

impl Write<'_> {
    async fn begin(client: &mut Client) -> Result<Write<'_>> {
        let tx = client.transaction().await.map_err(db)?;
        let row = tx
            .query_one(
                "SELECT audit_seq, audit_hash, change_seq FROM faceid_head WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(db)?;
        let head = Head {
            audit_seq: row.get::<_, i64>(0) as u64,
            audit_hash: row.get(1),
            change_seq: row.get::<_, i64>(2) as u64,
        };
        Ok(Write {
            tx,
            head,
            changed: false,
        })
    }

    async fn append_audit(&mut self, event: &AuditEvent) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO faceid_audit (seq, event) VALUES ($1, $2)",
                &[&(event.seq as i64), &json(event)?],
            )
            .await
            .map_err(db)?;
        self.head.audit_seq = event.seq;
        self.head.audit_hash = event.hash.clone();
        Ok(())
    }

    async fn change(
        &mut self,
        kind: ChangeKind,
        subject: Option<&str>,
        origin: &str,
    ) -> Result<()> {
        self.head.change_seq += 1;
        let kind = kind.as_str();
        self.tx
            .execute(
                "INSERT INTO faceid_changes (seq, kind, subject, origin) VALUES ($1, $2, $3, $4)",
                &[&(self.head.change_seq as i64), &kind, &subject, &origin],
            )
            .await
            .map_err(db)?;
        self.changed = true;
        Ok(())
    }

    async fn mark_applied(&self, event_id: &str, outcome: &PushOutcome) -> Result<()> {
        let inserted = self
            .tx
            .execute(
                "INSERT INTO faceid_applied (event_id, outcome) VALUES ($1, $2) \
                 ON CONFLICT (event_id) DO NOTHING",
                &[&event_id, &json(outcome)?],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(Error::AlreadyApplied(event_id.to_string()));
        }
        Ok(())
    }

    async fn put_subject(
        &self,
        sealer: &Sealer,
        subject: &Subject,
        templates: &[Template],
        image: Option<&[u8]>,
    ) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO faceid_subjects (id, record) VALUES ($1, $2)",
                &[&subject.id, &json(subject)?],
            )
            .await
            .map_err(db)?;
        for (tag, template) in subject.template_tags.iter().zip(templates) {
            let sealed = sealer.seal(&template.to_bytes(), &template_location(*tag))?;
            self.tx
                .execute(
                    "INSERT INTO faceid_templates (tag, subject, sealed) VALUES ($1, $2, $3)",
                    &[&(*tag as i64), &subject.id, &sealed],
                )
                .await
                .map_err(db)?;
        }
        if let Some(image) = image {
            let sealed = sealer.seal(image, &image_location(&subject.id))?;
            self.tx
                .execute(
                    "INSERT INTO faceid_images (subject, sealed) VALUES ($1, $2)",
                    &[&subject.id, &sealed],
                )
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn subject(&self, id: &str) -> Result<Option<Subject>> {
        let row = self
            .tx
            .query_opt("SELECT record FROM faceid_subjects WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        row.map(|r| parse(&r.get::<_, String>(0))).transpose()
    }

    async fn document_holder(&self, tag: &str) -> Result<Option<String>> {
        let row = self
            .tx
            .query_opt(
                "SELECT id FROM faceid_subjects WHERE (record::jsonb) ->> 'document_tag' = $1",
                &[&tag],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get::<_, String>(0)))
    }

    async fn remove_subject(&self, id: &str) -> Result<Option<Subject>> {
        let held = self.subject(id).await?;
        if held.is_some() {
            // Templates and images go with it (ON DELETE CASCADE).
            self.tx
                .execute("DELETE FROM faceid_subjects WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
        }
        Ok(held)
    }

    async fn commit(self) -> Result<()> {
        self.tx
            .execute(
                "UPDATE faceid_head SET audit_seq = $1, audit_hash = $2, change_seq = $3 WHERE id = 1",
                &[
                    &(self.head.audit_seq as i64),
                    &self.head.audit_hash,
                    &(self.head.change_seq as i64),
                ],
            )
            .await
            .map_err(db)?;
        if self.changed {
            let payload = self.head.change_seq.to_string();
            self.tx
                .execute("SELECT pg_notify('faceid_changes', $1)", &[&payload])
                .await
                .map_err(db)?;
        }
        self.tx.commit().await.map_err(db)
    }
}

/// A fresh template tag: random, positive as a signed 64-bit column.
fn new_tag() -> u64 {
    u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or([1; 8]),
    ) >> 1
}

impl Shared {
    async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i].lock().await
    }

    async fn templates_of(&self, client: &Client, subject: &Subject) -> Result<Vec<Template>> {
        let rows = client
            .query(
                "SELECT tag, sealed FROM faceid_templates WHERE subject = $1",
                &[&subject.id],
            )
            .await
            .map_err(db)?;
        let mut by_tag: HashMap<u64, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
            .collect();
        subject
            .template_tags
            .iter()
            .map(|tag| {
                let sealed = by_tag
                    .remove(tag)
                    .ok_or_else(|| Error::Corrupt(format!("template {tag} missing")))?;
                let bytes = self.sealer.open(&sealed, &template_location(*tag))?;
                Ok(Template::from_bytes(&bytes)?)
            })
            .collect()
    }

    async fn subject_of(&self, client: &Client, id: &str) -> Result<Option<Subject>> {
        let row = client
            .query_opt("SELECT record FROM faceid_subjects WHERE id = $1", &[&id])
            .await
            .map_err(db)?;
        row.map(|r| parse(&r.get::<_, String>(0))).transpose()
    }

    /// Brings the in-memory index up to the change feed's head.
    async fn catch_up(&self) -> Result<()> {
        let _one_at_a_time = self.catching_up.lock().await;
        let cursor = self
            .memory
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cursor;
        let client = self.client().await;
        let rows = client
            .query(
                "SELECT seq, kind, subject, origin FROM faceid_changes WHERE seq > $1 ORDER BY seq",
                &[&(cursor as i64)],
            )
            .await
            .map_err(db)?;
        for row in rows {
            let seq = row.get::<_, i64>(0) as u64;
            let kind: String = row.get(1);
            let subject: Option<String> = row.get(2);
            let origin: String = row.get(3);
            let id = subject.unwrap_or_default();
            // An unknown kind stops the catch-up with an error; the index keeps what it has.
            match ChangeKind::parse(&kind)? {
                ChangeKind::Enroll => {
                    let current = self.subject_of(&client, &id).await?;
                    match current.filter(|s| s.origin == origin) {
                        Some(subject) => {
                            let templates = self.templates_of(&client, &subject).await?;
                            let mut memory =
                                self.memory.write().unwrap_or_else(PoisonError::into_inner);
                            memory.add(&subject, templates);
                            memory.cursor = seq;
                        }
                        None => {
                            self.memory
                                .write()
                                .unwrap_or_else(PoisonError::into_inner)
                                .cursor = seq
                        }
                    }
                }
                ChangeKind::Delete => {
                    let mut memory = self.memory.write().unwrap_or_else(PoisonError::into_inner);
                    // A re-enrollment under the same id arrives as a later row.
                    memory.remove(&id);
                    memory.cursor = seq;
                }
                ChangeKind::Reset => {
                    let mut memory = self.memory.write().unwrap_or_else(PoisonError::into_inner);
                    memory.index.clear();
                    memory.templates.clear();
                    memory.subjects.clear();
                    memory.cursor = seq;
                }
            }
        }
        Ok(())
    }
}

impl PgGallery {
    /// Connects to PostgreSQL (`libpq`-style connection string, on a trusted network or
    /// loopback: no TLS to the database), creates the tables if needed, checks the key
    /// (`WrongKey` for a key that did not create the gallery), loads the index and starts
    /// following the change feed.
    pub fn connect(url: &str, key: &GalleryKey) -> Result<PgGallery> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("faceid-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::Database(e.to_string()))?;
        let url = url.to_string();
        let sealer = Sealer::new(key);
        let shared = runtime.block_on(async move {
            let mut clients = Vec::new();
            for _ in 0..CONNECTIONS {
                let (client, connection) =
                    tokio_postgres::connect(&url, NoTls).await.map_err(db)?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing_free_log(&format!("postgres connection ended: {e}"));
                    }
                });
                clients.push(tokio::sync::Mutex::new(client));
            }
            clients[0]
                .lock()
                .await
                .batch_execute(SCHEMA)
                .await
                .map_err(db)?;
            let shared = Arc::new(Shared {
                clients,
                next: AtomicUsize::new(0),
                sealer,
                memory: RwLock::new(Memory {
                    index: QuantizedIndex::new(faceid_core::template::TEMPLATE_DIM),
                    templates: HashMap::new(),
                    subjects: HashMap::new(),
                    cursor: 0,
                }),
                catching_up: tokio::sync::Mutex::new(()),
                search_threads: std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
            });
            shared.check_key().await?;
            shared.load().await?;
            follow(shared.clone(), url).await;
            Ok::<_, Error>(shared)
        })?;
        Ok(PgGallery {
            shared,
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// Runs `work` on the gallery's runtime and waits for it from any thread.
    fn block<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        {
            let runtime = self.runtime.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(runtime) = runtime.as_ref() else {
                return Err(Error::Database("the gallery is closed".into()));
            };
            runtime.spawn(async move {
                let _ = tx.send(work.await);
            });
        }
        rx.recv()
            .map_err(|_| Error::Database("the database task stopped".into()))?
    }

    /// Brings this process's index up to the database now (tests, and callers that need
    /// another process's write at once rather than within a second).
    pub fn catch_up(&self) -> Result<()> {
        let shared = self.shared.clone();
        self.block(async move { shared.catch_up().await })
    }
}

/// Logs without a tracing dependency in this crate: to stderr, which the server captures.
fn tracing_free_log(message: &str) {
    eprintln!("faceid-gallery: {message}");
}

/// Listens for change notifications on a dedicated connection and catches up on each, and
/// every [`CATCH_UP`] regardless; reconnects when the connection drops.
async fn follow(shared: Arc<Shared>, url: String) {
    tokio::spawn(async move {
        loop {
            match tokio_postgres::connect(&url, NoTls).await {
                Ok((client, mut connection)) => {
                    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<()>();
                    let pump = tokio::spawn(async move {
                        loop {
                            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                    let _ = wake.send(());
                                }
                                Some(Ok(_)) => {}
                                _ => return,
                            }
                        }
                    });
                    if client.batch_execute("LISTEN faceid_changes").await.is_ok() {
                        loop {
                            tokio::select! {
                                got = woken.recv() => if got.is_none() { break },
                                () = tokio::time::sleep(CATCH_UP) => {}
                            }
                            while woken.try_recv().is_ok() {}
                            if let Err(e) = shared.catch_up().await {
                                tracing_free_log(&format!("index catch-up failed: {e}"));
                            }
                            if pump.is_finished() {
                                break;
                            }
                        }
                    }
                    pump.abort();
                }
                Err(e) => tracing_free_log(&format!("listen connection failed: {e}")),
            }
            tokio::time::sleep(CATCH_UP).await;
        }
    });
}

impl Shared {
    async fn check_key(&self) -> Result<()> {
        let client = self.client().await;
        let row = client
            .query_opt(
                "SELECT value FROM faceid_meta WHERE name = 'key_check'",
                &[],
            )
            .await
            .map_err(db)?;
        match row {
            Some(row) => {
                let sealed: Vec<u8> = row.get(0);
                let plain = self
                    .sealer
                    .open(&sealed, b"key_check")
                    .map_err(|_| Error::WrongKey)?;
                if plain != KEY_CHECK {
                    return Err(Error::WrongKey);
                }
            }
            None => {
                let sealed = self.sealer.seal(KEY_CHECK, b"key_check")?;
                client
                    .execute(
                        "INSERT INTO faceid_meta (name, value) VALUES ('key_check', $1) ON CONFLICT (name) DO NOTHING",
                        &[&sealed],
                    )
                    .await
                    .map_err(db)?;
                drop(client);
                return Box::pin(self.check_key()).await;
            }
        }
        Ok(())
    }

    /// Loads every subject into memory, at the current head of the change feed.
    async fn load(&self) -> Result<()> {
        let client = self.client().await;
        let head: i64 = client
            .query_one("SELECT change_seq FROM faceid_head WHERE id = 1", &[])
            .await
            .map_err(db)?
            .get(0);
        let subjects = client
            .query("SELECT record FROM faceid_subjects", &[])
            .await
            .map_err(db)?;
        let rows = client
            .query("SELECT tag, sealed FROM faceid_templates", &[])
            .await
            .map_err(db)?;
        let mut sealed: HashMap<u64, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
            .collect();
        let mut memory = Memory {
            index: QuantizedIndex::new(faceid_core::template::TEMPLATE_DIM),
            templates: HashMap::new(),
            subjects: HashMap::new(),
            cursor: head as u64,
        };
        for row in subjects {
            let subject: Subject = parse(&row.get::<_, String>(0))?;
            let templates = subject
                .template_tags
                .iter()
                .map(|tag| {
                    let bytes = sealed
                        .remove(tag)
                        .ok_or_else(|| Error::Corrupt(format!("template {tag} missing")))?;
                    let plain = self.sealer.open(&bytes, &template_location(*tag))?;
                    Ok(Template::from_bytes(&plain)?)
                })
                .collect::<Result<Vec<_>>>()?;
            memory.add(&subject, templates);
        }
        *self.memory.write().unwrap_or_else(PoisonError::into_inner) = memory;
        Ok(())
    }
}

/// One PostgreSQL write transaction as the rules see it: each primitive runs on the
/// gallery's runtime while the rules wait on a thread of their own.
struct PgTx<'a, 'c> {
    handle: &'a tokio::runtime::Handle,
    write: Write<'c>,
    sealer: &'a Sealer,
}

impl GalleryTx for PgTx<'_, '_> {
    fn subject(&mut self, id: &str) -> Result<Option<Subject>> {
        self.handle.block_on(self.write.subject(id))
    }
    fn put_subject(
        &mut self,
        subject: &Subject,
        templates: &[Template],
        image: Option<&[u8]>,
    ) -> Result<()> {
        self.handle.block_on(
            self.write
                .put_subject(self.sealer, subject, templates, image),
        )
    }
    fn remove_subject(&mut self, id: &str) -> Result<Option<Subject>> {
        self.handle.block_on(self.write.remove_subject(id))
    }
    fn document_holder(&mut self, tag: &str) -> Result<Option<String>> {
        self.handle.block_on(self.write.document_holder(tag))
    }
    fn audit_head(&mut self) -> Result<(u64, String)> {
        let head = &self.write.head;
        Ok((head.audit_seq, head.audit_hash.clone()))
    }
    fn append_audit(&mut self, event: &AuditEvent) -> Result<()> {
        self.handle.block_on(self.write.append_audit(event))
    }
    fn append_change(
        &mut self,
        kind: ChangeKind,
        subject: Option<&str>,
        origin: &str,
    ) -> Result<()> {
        self.handle
            .block_on(self.write.change(kind, subject, origin))
    }
    fn mark_applied(&mut self, event_id: &str, outcome: &PushOutcome) -> Result<()> {
        self.handle
            .block_on(self.write.mark_applied(event_id, outcome))
    }
    fn queue(&mut self, _event: &SyncEvent) -> Result<()> {
        Ok(()) // the server keeps no outbox
    }
}

impl PgGallery {
    fn handle(&self) -> Result<tokio::runtime::Handle> {
        let runtime = self.runtime.lock().unwrap_or_else(PoisonError::into_inner);
        runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| Error::Database("the gallery is closed".into()))
    }

    /// The first column of the row `sql` selects by `key`, if any.
    fn lookup<T>(&self, sql: &'static str, key: &str) -> Result<Option<T>>
    where
        T: for<'r> tokio_postgres::types::FromSql<'r> + Send + 'static,
    {
        let shared = self.shared.clone();
        let key = key.to_string();
        self.block(async move {
            let client = shared.client().await;
            let row = client.query_opt(sql, &[&key]).await.map_err(db)?;
            Ok(row.map(|r| r.get::<_, T>(0)))
        })
    }

    fn memory_read(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.shared
            .memory
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn memory(&self) -> std::sync::RwLockWriteGuard<'_, Memory> {
        self.shared
            .memory
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Backend for PgGallery {
    fn write<T: Send>(&self, body: TxBody<'_, T>) -> Result<T> {
        let handle = self.handle()?;
        let shared = &self.shared;
        // The rules are synchronous; they run on a scoped thread outside any runtime, so
        // waiting on each statement is allowed whichever thread called.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut client = handle.block_on(shared.client());
                    let write = handle.block_on(Write::begin(&mut client))?;
                    let mut tx = PgTx {
                        handle: &handle,
                        write,
                        sealer: &shared.sealer,
                    };
                    let out = body(&mut tx)?;
                    handle.block_on(tx.write.commit())?;
                    Ok(out)
                })
                .join()
                .unwrap_or_else(|_| Err(Error::Database("a write panicked".into())))
        })
    }
    fn new_tags(&self, n: usize) -> Result<Vec<u64>> {
        Ok((0..n).map(|_| new_tag()).collect())
    }
    fn document_tag(&self, document: &DocumentId) -> Result<String> {
        self.shared.sealer.document_tag(document)
    }
    fn read_subject(&self, id: &str) -> Result<Option<Subject>> {
        let shared = self.shared.clone();
        let id = id.to_string();
        self.block(async move {
            let client = shared.client().await;
            shared.subject_of(&client, &id).await
        })
    }
    fn read_templates(&self, subject: &Subject) -> Result<Vec<Template>> {
        let shared = self.shared.clone();
        let subject = subject.clone();
        self.block(async move {
            let client = shared.client().await;
            shared.templates_of(&client, &subject).await
        })
    }
    fn applied_outcome(&self, event_id: &str) -> Result<Option<PushOutcome>> {
        self.lookup::<String>(
            "SELECT outcome FROM faceid_applied WHERE event_id = $1",
            event_id,
        )?
        .map(|text| parse(&text))
        .transpose()
    }
    fn audit_rows(&self) -> Result<Vec<(u64, Option<AuditEvent>)>> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            let rows = client
                .query("SELECT seq, event FROM faceid_audit ORDER BY seq", &[])
                .await
                .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let event = parse::<AuditEvent>(&r.get::<_, String>(1)).ok();
                    (r.get::<_, i64>(0) as u64, event)
                })
                .collect())
        })
    }
    fn stored_audit_head(&self) -> Result<Option<(u64, String)>> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            let row = client
                .query_one(
                    "SELECT audit_seq, audit_hash FROM faceid_head WHERE id = 1",
                    &[],
                )
                .await
                .map_err(db)?;
            Ok(Some((row.get::<_, i64>(0) as u64, row.get::<_, String>(1))))
        })
    }
    fn clear_subjects(&self) -> Result<()> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            // Templates and images go with their subject (ON DELETE CASCADE).
            client
                .execute("DELETE FROM faceid_subjects", &[])
                .await
                .map_err(db)?;
            Ok(())
        })
    }
    fn changes_after(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            let rows = client
                .query(
                    "SELECT seq, kind, subject, origin FROM faceid_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&(cursor as i64), &(limit.min(i64::MAX as usize) as i64)],
                )
                .await
                .map_err(db)?;
            rows.into_iter()
                .map(|r| {
                    Ok(Change {
                        seq: r.get::<_, i64>(0) as u64,
                        kind: ChangeKind::parse(&r.get::<_, String>(1))?,
                        subject: r.get(2),
                        origin: r.get(3),
                    })
                })
                .collect()
        })
    }
    fn read_subjects(&self) -> Result<Vec<Subject>> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            records(
                &client,
                "SELECT record FROM faceid_subjects ORDER BY id",
                &[],
            )
            .await
        })
    }
    fn count(&self) -> usize {
        self.memory_read().subjects.len()
    }
    fn read_image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.lookup::<Vec<u8>>("SELECT sealed FROM faceid_images WHERE subject = $1", id)?
            .map(|sealed| self.shared.sealer.open(&sealed, &image_location(id)))
            .transpose()
    }
    fn read_audit(&self) -> Result<Vec<AuditEvent>> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            records(&client, "SELECT event FROM faceid_audit ORDER BY seq", &[]).await
        })
    }
    fn search_index(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
        let memory = self.memory_read();
        let hits = memory.index.search(
            probe.vector(),
            (max_subjects * 4).max(32),
            self.shared.search_threads,
        );
        crate::gallery::rerank(hits, max_subjects, |tag| {
            memory
                .templates
                .get(&tag)
                .map(|template| probe.cosine(template))
                .transpose()
                .map_err(Error::from)
        })
    }
    fn index_bytes(&self) -> usize {
        self.memory_read().index.memory_bytes()
    }
    fn store_bi(&self, record: &BiRecord) -> Result<()> {
        let shared = self.shared.clone();
        let (date, encoded) = (record.date.clone(), json(record)?);
        self.block(async move {
            let client = shared.client().await;
            client
                .execute(
                    "INSERT INTO faceid_bi (date, record) VALUES ($1, $2)",
                    &[&date, &encoded],
                )
                .await
                .map_err(db)?;
            Ok(())
        })
    }
    fn read_bi(&self, from: &str, to: &str) -> Result<Vec<BiRecord>> {
        let shared = self.shared.clone();
        let (from, to) = (from.to_string(), to.to_string());
        self.block(async move {
            let client = shared.client().await;
            records(
                &client,
                "SELECT record FROM faceid_bi WHERE date >= $1 AND date <= $2 ORDER BY id",
                &[&from, &to],
            )
            .await
        })
    }
    fn feed_head(&self) -> Result<u64> {
        let shared = self.shared.clone();
        self.block(async move {
            let client = shared.client().await;
            let row = client
                .query_one("SELECT change_seq FROM faceid_head WHERE id = 1", &[])
                .await
                .map_err(db)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
    fn index_add(&self, subject: &Subject, templates: &[Template]) {
        self.memory().add(subject, templates.to_vec());
    }
    fn index_remove(&self, id: &str) {
        self.memory().remove(id);
    }
    fn index_clear(&self) {
        let mut memory = self.memory();
        memory.index.clear();
        memory.templates.clear();
        memory.subjects.clear();
    }
}
