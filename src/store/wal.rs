//! The redo log (`<data>.wal`): what each group wrote, made durable with one sequential
//! sync before the group is acknowledged (DESIGN.md, "Write path").
//!
//! Layout: a header block, then records on preallocated (zero-filled) space, so a sync is an
//! overwrite of pages the file already has, never a metadata change of the file's size.
//!
//! ```text
//! header (HEADER_BYTES): "STOCKWAL" | version u32 | flags u32 | file id [16] | crc32 u32
//! record:  magic u32 | payload len u32 | gen u64 | crc32(len ‖ gen ‖ payload) u32 | 0 u32
//!          payload (ops), zero padding to RECORD_ALIGN_BYTES
//! ```
//!
//! A record is one group's writes, numbered by `gen` (one per redb commit). After a durable
//! checkpoint of redb at gen K the log starts again at the first record slot with K + 1;
//! records left further on from before are older (gen ≤ K) and end the scan. At open the
//! records after redb's gen are applied again: a record that fails its check at the end is
//! a torn tail (cut); one that fails with a good record of a later gen after it is damage,
//! which stops the start and changes nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes before the first record: the header, padded to one page.
pub const HEADER_BYTES: u64 = 4096;
const HEADER_MAGIC: &[u8; 8] = b"STOCKWAL";
const HEADER_VERSION: u32 = 1;
/// The log's every record was checkpointed into the data file before the daemon stopped.
const FLAG_CLEAN: u32 = 1;
const RECORD_MAGIC: u32 = 0x5244_4f57; // "WODR" little-endian
/// Record header: magic, len, gen, crc, reserved.
pub const RECORD_HEADER_BYTES: usize = 24;
/// Records start on this alignment (the scan for damage looks only there).
pub const RECORD_ALIGN_BYTES: usize = 8;
/// A record payload larger than this is refused as damage when read back.
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 1 << 30;
/// Zeros written per call while preallocating: one page. The page cache keeps what one
/// write brings in as one folio, and a sync writes back whole folios: with 1 MiB writes
/// here, every later 500-byte record made its sync write 1 MiB back. The load bench's "disk
/// writes per request" at one connection shows it (docs/benchmarks.md: 1,028 KiB in run A,
/// 8 KiB in run B).
const PREALLOC_CHUNK_BYTES: usize = 4096;

/// Why the log could not be used.
#[derive(Debug)]
pub enum WalError {
    Io(PathBuf, io::Error),
    /// The file is not a stockd log, or its header is damaged.
    NotALog(PathBuf, String),
    /// A record before the end is damaged: the start stops, nothing is changed.
    Damaged {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    /// The log holds writes of another data file that it never checkpointed.
    Foreign(PathBuf),
}

impl std::fmt::Display for WalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            WalError::NotALog(p, why) => write!(f, "{}: not a stockd redo log ({why}); left untouched", p.display()),
            WalError::Damaged { path, offset, why } => write!(
                f,
                "{}: damaged record at byte offset {offset} ({why}) with later records after it; \
                 nothing was changed — restore the data file from a backup, or move the log away to \
                 start from the data file alone (losing the writes it holds)",
                path.display()
            ),
            WalError::Foreign(p) => write!(
                f,
                "{}: holds writes of another data file that were never checkpointed (was a backup \
                 restored over the data file after a crash?); nothing was changed — move the log \
                 away to start from the data file alone",
                p.display()
            ),
        }
    }
}

impl std::error::Error for WalError {}

/// The log beside a data file.
pub fn path_for(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_os_string();
    name.push(".wal");
    PathBuf::from(name)
}

/// A record as read back: its gen, its payload, where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub gen: u64,
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// The bytes of one record at any offset: header, payload, padding.
pub fn encode_record(gen: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&gen.to_le_bytes());
    out.extend_from_slice(&record_crc(len, gen, payload).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + padding(payload.len()), 0);
}

/// Bytes a record of `payload_bytes` takes in the file.
pub fn record_bytes(payload_bytes: usize) -> u64 {
    (RECORD_HEADER_BYTES + payload_bytes + padding(payload_bytes)) as u64
}

fn padding(payload_bytes: usize) -> usize {
    (RECORD_ALIGN_BYTES - (RECORD_HEADER_BYTES + payload_bytes) % RECORD_ALIGN_BYTES) % RECORD_ALIGN_BYTES
}

fn record_crc(len: u32, gen: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&gen.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// What lies at one offset of the log.
enum Slot {
    Record(Record, u64),
    /// Zeros, or the header of no record: the log ends here (or something unreadable).
    Nothing,
    /// A record header that promises a payload the check refuses (torn or damaged).
    Bad(String),
}

fn slot_at(bytes: &[u8], offset: u64) -> Slot {
    let start = offset as usize;
    let Some(head) = bytes.get(start..start + RECORD_HEADER_BYTES) else {
        return Slot::Nothing;
    };
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    if word(0) != RECORD_MAGIC {
        return Slot::Nothing;
    }
    let len = word(4);
    let gen = u64::from_le_bytes([
        head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
    ]);
    let crc = word(16);
    if word(20) != 0 {
        return Slot::Bad("reserved header bytes are not zero".into());
    }
    if len as usize > RECORD_PAYLOAD_MAX_BYTES {
        return Slot::Bad(format!("length {len} is out of range"));
    }
    let body = start + RECORD_HEADER_BYTES;
    let Some(payload) = bytes.get(body..body + len as usize) else {
        return Slot::Bad("the record runs past the end of the file".into());
    };
    if record_crc(len, gen, payload) != crc {
        return Slot::Bad("checksum mismatch".into());
    }
    let next = offset + record_bytes(len as usize);
    Slot::Record(
        Record {
            gen,
            offset,
            payload: payload.to_vec(),
        },
        next,
    )
}

/// The records to apply after redb's checkpointed `gen_durable`, in order, and the offset
/// where the next record goes. `bytes` is the whole file.
pub fn scan(path: &Path, bytes: &[u8], gen_durable: u64) -> Result<(Vec<Record>, u64), WalError> {
    let damaged = |offset, why: String| WalError::Damaged {
        path: path.to_path_buf(),
        offset,
        why,
    };
    let mut offset = HEADER_BYTES;
    let mut records = Vec::new();
    // The gen the next record must have, once the first is read.
    let mut gen_next = None::<u64>;
    let mut end_why = String::from("unreadable record header");
    loop {
        match slot_at(bytes, offset) {
            Slot::Record(r, next) => {
                let due = gen_next.unwrap_or(gen_durable + 1);
                if r.gen > due {
                    return Err(damaged(offset, format!("gen {} where gen {due} was due", r.gen)));
                }
                if r.gen < due && gen_next.is_some() {
                    break; // an older pass over the file: the log ends before it
                }
                gen_next = Some(r.gen + 1);
                if r.gen > gen_durable {
                    records.push(r);
                }
                offset = next;
            }
            Slot::Nothing => break,
            Slot::Bad(why) => {
                end_why = why;
                break;
            }
        }
    }
    // The end: a torn tail — unless a valid record the scan should have reached lies beyond
    // it, which means a record (or its header) before the tail is damaged.
    let due = gen_next.unwrap_or(gen_durable + 1);
    if let Some(later) = find_later(bytes, offset + RECORD_ALIGN_BYTES as u64, due) {
        return Err(damaged(offset, format!("{end_why}; a record of gen {later} follows")));
    }
    // Only already checkpointed records (or none): the next record starts over.
    let next = if records.is_empty() { HEADER_BYTES } else { offset };
    Ok((records, next))
}

/// Checks a log's structure before anything is opened for writing (redb's crash repair
/// writes to the data file): a damaged record among valid ones stops the start here, with
/// both files untouched. What needs the data file's gen is checked later by [`scan`].
/// Returns the id of the data file the log belongs to when it holds writes to apply.
pub fn precheck(path: &Path) -> Result<Option<[u8; 16]>, WalError> {
    let io = |e| WalError::Io(path.to_path_buf(), e);
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let head = head_of(&mut file).map_err(io)?;
    if head.is_empty() {
        return Ok(None);
    }
    let (id, clean) = read_header(path, &head)?;
    if clean {
        return Ok(None); // every record is in the data file
    }
    let mut bytes = head;
    file.read_to_end(&mut bytes).map_err(io)?;
    // Without the data file's gen, take the first record's as where the log starts.
    if let Slot::Record(first, _) = slot_at(&bytes, HEADER_BYTES) {
        scan(path, &bytes, first.gen.saturating_sub(1))?;
    }
    Ok(Some(id))
}

/// The gen of a valid record at or after `from` (aligned) whose gen is `gen_min` or later.
fn find_later(bytes: &[u8], from: u64, gen_min: u64) -> Option<u64> {
    let align = RECORD_ALIGN_BYTES as u64;
    let mut at = from.div_ceil(align) * align;
    let magic = RECORD_MAGIC.to_le_bytes();
    while (at as usize) + RECORD_HEADER_BYTES <= bytes.len() {
        let s = at as usize;
        if bytes[s..s + 4] == magic {
            if let Slot::Record(r, _) = slot_at(bytes, at) {
                if r.gen >= gen_min {
                    return Some(r.gen);
                }
            }
        }
        at += align;
    }
    None
}

/// The open log: written by one thread (the syncer) at offsets the writer assigns.
pub struct Wal {
    path: PathBuf,
    file: File,
    capacity_bytes: u64,
    file_id: [u8; 16],
    /// Tests: every write and sync fails while set (a broken disk under the log).
    #[cfg(test)]
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

impl Wal {
    /// Opens (or creates and preallocates) the log of a data file whose id is `file_id`,
    /// checks its header and returns it with the whole file's bytes for [`scan`].
    pub fn open(path: &Path, file_id: [u8; 16], capacity_bytes: u64) -> Result<(Wal, Vec<u8>), WalError> {
        let io = |e| WalError::Io(path.to_path_buf(), e);
        let exists = std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
        if !exists {
            let wal = Wal::create(path, file_id, capacity_bytes)?;
            return Ok((wal, Vec::new()));
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let (id, clean) = read_header(path, &head_of(&mut file).map_err(io)?)?;
        if id != file_id {
            if !clean {
                return Err(WalError::Foreign(path.to_path_buf()));
            }
            drop(file);
            let wal = Wal::create(path, file_id, capacity_bytes)?;
            return Ok((wal, Vec::new()));
        }
        // A clean log holds nothing the data file lacks: no need to read it.
        let mut bytes = Vec::new();
        if !clean {
            file.seek(io::SeekFrom::Start(0)).map_err(io)?;
            file.read_to_end(&mut bytes).map_err(io)?;
        }
        let size = file.metadata().map_err(io)?.len();
        let wal = Wal {
            path: path.to_path_buf(),
            file,
            capacity_bytes: size.max(capacity_bytes),
            file_id,
            #[cfg(test)]
            failing: Default::default(),
        };
        Ok((wal, bytes))
    }

    /// Zero-fills the file up to its capacity (after recovery read it: opening changes
    /// nothing until the log's records are known to be sound).
    pub fn make_room(&self) -> Result<(), WalError> {
        let size = self
            .file
            .metadata()
            .map_err(|e| WalError::Io(self.path.clone(), e))?
            .len();
        if size < self.capacity_bytes {
            self.zero_fill(size, self.capacity_bytes)?;
        }
        Ok(())
    }

    /// A fresh log: header, then zeros up to `capacity_bytes`, synced with its directory.
    fn create(path: &Path, file_id: [u8; 16], capacity_bytes: u64) -> Result<Wal, WalError> {
        let io = |e| WalError::Io(path.to_path_buf(), e);
        let tmp = {
            let mut name = path.as_os_str().to_os_string();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let file = crate::store::owner_only_file(&tmp).map_err(io)?;
        let wal = Wal {
            path: tmp.clone(),
            file,
            capacity_bytes,
            file_id,
            #[cfg(test)]
            failing: Default::default(),
        };
        wal.zero_fill(0, capacity_bytes.max(HEADER_BYTES))?;
        wal.write_header(false)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        sync_dir(path).map_err(io)?;
        Ok(Wal {
            path: path.to_path_buf(),
            ..wal
        })
    }

    fn zero_fill(&self, from: u64, to: u64) -> Result<(), WalError> {
        let zeros = vec![0u8; PREALLOC_CHUNK_BYTES];
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(PREALLOC_CHUNK_BYTES);
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| WalError::Io(self.path.clone(), e))?;
            at += n as u64;
        }
        self.file.sync_all().map_err(|e| WalError::Io(self.path.clone(), e))
    }

    /// Writes the header (clean or in use) and syncs it.
    pub fn write_header(&self, clean: bool) -> Result<(), WalError> {
        let mut h = Vec::with_capacity(40);
        h.extend_from_slice(HEADER_MAGIC);
        h.extend_from_slice(&HEADER_VERSION.to_le_bytes());
        h.extend_from_slice(&(if clean { FLAG_CLEAN } else { 0 }).to_le_bytes());
        h.extend_from_slice(&self.file_id);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        self.write_at(&h, 0)
            .and_then(|()| self.sync())
            .map_err(|e| WalError::Io(self.path.clone(), e))
    }

    /// Where records may go: `[HEADER_BYTES, capacity)`.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` (whole records) at `offset`; not yet durable.
    pub fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.fault()?;
        self.file.write_all_at(bytes, offset)
    }

    /// Makes everything written so far durable (fdatasync).
    pub fn sync(&self) -> io::Result<()> {
        self.fault()?;
        self.file.sync_data()
    }

    #[cfg(test)]
    fn fault(&self) -> io::Result<()> {
        match self.failing.load(std::sync::atomic::Ordering::Acquire) {
            true => Err(io::Error::other("injected log I/O error")),
            false => Ok(()),
        }
    }

    #[cfg(not(test))]
    fn fault(&self) -> io::Result<()> {
        Ok(())
    }
}

/// The header block (or less, for a short file), leaving the file positioned after it.
fn head_of(file: &mut File) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEADER_BYTES as usize);
    Read::by_ref(file).take(HEADER_BYTES).read_to_end(&mut head)?;
    Ok(head)
}

/// The log's file id, and whether it was marked clean (all of it checkpointed).
pub fn read_header(path: &Path, bytes: &[u8]) -> Result<([u8; 16], bool), WalError> {
    let bad = |why: &str| WalError::NotALog(path.to_path_buf(), why.to_string());
    let h = bytes.get(..36).ok_or_else(|| bad("shorter than its header"))?;
    if &h[..8] != HEADER_MAGIC {
        return Err(bad("no stockd log marker"));
    }
    let crc = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
    if crc32fast::hash(&h[..32]) != crc {
        return Err(bad("header checksum mismatch"));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != HEADER_VERSION {
        return Err(bad(&format!(
            "log format {version}, this binary reads {HEADER_VERSION}"
        )));
    }
    let flags = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[16..32]);
    Ok((id, flags & FLAG_CLEAN != 0))
}

/// Syncs the directory holding `path`, so a created or renamed file survives a crash.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(records: &[(u64, &[u8])], capacity: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_BYTES as usize];
        for (gen, payload) in records {
            encode_record(*gen, payload, &mut bytes);
        }
        bytes.resize(capacity.max(bytes.len()), 0);
        bytes
    }

    fn gens(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.gen).collect()
    }

    const P: &str = "test.wal";

    #[test]
    fn records_after_the_checkpoint_are_applied_in_order() {
        let bytes = log_of(&[(5, b"a"), (6, b"bb"), (7, b"ccc")], 8192);
        let (records, end) = scan(Path::new(P), &bytes, 4).unwrap();
        assert_eq!(gens(&records), vec![5, 6, 7]);
        assert_eq!(records[2].payload, b"ccc");
        assert_eq!(end, HEADER_BYTES + record_bytes(1) + record_bytes(2) + record_bytes(3));
        let (records, _) = scan(Path::new(P), &bytes, 6).unwrap();
        assert_eq!(gens(&records), vec![7]);
        let (records, end) = scan(Path::new(P), &bytes, 7).unwrap();
        assert!(records.is_empty());
        assert_eq!(end, HEADER_BYTES, "all checkpointed: the log starts over");
    }

    #[test]
    fn an_older_epoch_after_the_tail_ends_the_scan() {
        // Epoch 1 wrote gens 1..=4; checkpoint at 4; epoch 2 overwrote the first slot with 5.
        let mut bytes = log_of(&[(1, b"xxxxxxxx"), (2, b"y"), (3, b"z"), (4, b"w")], 8192);
        let mut fresh = Vec::new();
        encode_record(5, b"new", &mut fresh);
        bytes[HEADER_BYTES as usize..HEADER_BYTES as usize + fresh.len()].copy_from_slice(&fresh);
        let (records, _) = scan(Path::new(P), &bytes, 4).unwrap();
        assert_eq!(gens(&records), vec![5]);
    }

    #[test]
    fn a_torn_tail_is_cut_at_every_byte_offset() {
        let payloads: [&[u8]; 3] = [b"first record", b"second", b"the last record, torn anywhere"];
        let whole = log_of(&[(1, payloads[0]), (2, payloads[1]), (3, payloads[2])], 0);
        let last_start = (HEADER_BYTES + record_bytes(payloads[0].len()) + record_bytes(payloads[1].len())) as usize;
        // Past the payload there is only padding: a record cut there is complete.
        let last_end = last_start + RECORD_HEADER_BYTES + payloads[2].len();
        for cut in last_start..last_end {
            // The tail was written up to `cut`; the rest of the slot still holds zeros.
            let mut bytes = whole[..cut].to_vec();
            bytes.resize(whole.len() + 4096, 0);
            let (records, end) = scan(Path::new(P), &bytes, 0).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(gens(&records), vec![1, 2], "cut at {cut}");
            assert_eq!(end, last_start as u64, "cut at {cut}");
        }
        // And a tail whose bytes are garbage instead of zeros.
        for cut in last_start..last_end {
            let mut bytes = whole.clone();
            for b in &mut bytes[cut..] {
                *b = 0xA5;
            }
            let (records, _) = scan(Path::new(P), &bytes, 0).unwrap_or_else(|e| panic!("garbage at {cut}: {e}"));
            assert_eq!(gens(&records), vec![1, 2], "garbage at {cut}");
        }
    }

    #[test]
    fn a_damaged_record_before_the_tail_stops_the_start() {
        let bytes = log_of(&[(1, b"one"), (2, b"two two"), (3, b"three")], 8192);
        let second = (HEADER_BYTES + record_bytes(3)) as usize;
        // Every byte that carries something: the header and the payload (not the padding).
        for at in second..second + RECORD_HEADER_BYTES + 7 {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            match scan(Path::new(P), &damaged, 0) {
                Err(WalError::Damaged { offset, .. }) => assert_eq!(offset, second as u64, "flip at {at}"),
                other => panic!("flip at {at}: expected damage, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_gap_between_the_data_file_and_the_log_is_damage() {
        let bytes = log_of(&[(9, b"nine")], 8192);
        assert!(matches!(scan(Path::new(P), &bytes, 4), Err(WalError::Damaged { .. })));
    }

    #[test]
    fn open_creates_preallocates_and_refuses_a_foreign_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb.wal");
        let (wal, bytes) = Wal::open(&path, [1; 16], 64 * 1024).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024);
        let mut rec = Vec::new();
        encode_record(1, b"payload", &mut rec);
        wal.write_at(&rec, HEADER_BYTES).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, bytes) = Wal::open(&path, [1; 16], 64 * 1024).unwrap();
        assert_eq!(gens(&scan(&path, &bytes, 0).unwrap().0), vec![1]);
        assert!(matches!(
            Wal::open(&path, [2; 16], 64 * 1024),
            Err(WalError::Foreign(_))
        ));
        // Once marked clean, a log of another file is replaced.
        let (wal, _) = Wal::open(&path, [1; 16], 64 * 1024).unwrap();
        wal.write_header(true).unwrap();
        drop(wal);
        let (_, bytes) = Wal::open(&path, [2; 16], 64 * 1024).unwrap();
        assert!(bytes.is_empty());
        std::fs::write(&path, b"not a log at all, clearly").unwrap();
        assert!(matches!(
            Wal::open(&path, [2; 16], 64 * 1024),
            Err(WalError::NotALog(..))
        ));
    }
}
