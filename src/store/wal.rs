//! The redo log (`<data>.wal`): what each group wrote, made durable with one sequential
//! sync before the group is acknowledged (DESIGN.md, "Write path").
//!
//! Layout: a header block, then records on preallocated (zero-filled) space, so a sync is an
//! overwrite of pages the file already has, never a metadata change of the file's size.
//!
//! ```text
//! header (HEADER_BYTES): "STOCKWAL" | version u32 | flags u32 | file id [16]
//!                        | region bytes u64 (version 2) | crc32 u32
//! region 0, region 1 (version 2; version 1 has one region, to the end of the file)
//! record:  magic u32 | payload len u32 | gen u64 | crc32(len ‖ gen ‖ payload) u32 | 0 u32
//!          payload (ops), zero padding to RECORD_ALIGN_BYTES
//! ```
//!
//! A record is one group's writes, numbered by `gen` (one per redb commit). Records follow
//! each other in one region. At a checkpoint of redb at gen K the writer moves to the other
//! region's start, with K's own record first: the region it leaves keeps the records before
//! K until the checkpoint's fsync, which runs in the background, has finished (`datafile.rs`);
//! the writer moves back into a region only once the checkpoint that covers it is synced.
//! A durable checkpoint on the writer (and every start) begins again at region 0.
//! Records left further on in a region from an earlier pass are older and end its scan; so
//! that this holds, a log whose regions change size (a new `checkpoint_log_bytes`, or a
//! format 1 log) is zeroed once its records are in the data file.
//! At open the records after redb's gen are applied again, in gen order from both regions,
//! and must follow one another: a record that fails its check at the end of a region is a
//! torn tail (cut); one that fails with a good record of a later gen after it in its region,
//! or a gen missing between them, is damage, which stops the start and changes nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes before the first record: the header, padded to one page.
pub const HEADER_BYTES: u64 = 4096;
const HEADER_MAGIC: &[u8; 8] = b"STOCKWAL";
/// The format written: two regions. Version 1 (one region) is still read.
const HEADER_VERSION: u32 = 2;
const HEADER_VERSION_ONE_REGION: u32 = 1;
/// Regions start on a page, so a record's sync never shares a page with the other region.
const REGION_ALIGN_BYTES: u64 = 4096;
/// The smallest log: the header and two regions of a page.
const CAPACITY_MIN_BYTES: u64 = HEADER_BYTES + 2 * REGION_ALIGN_BYTES;
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

/// Where records lie: the regions after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    region_bytes: u64,
    regions: u64,
}

impl Layout {
    /// Two equal regions in a file of `capacity_bytes`.
    pub fn halves(capacity_bytes: u64) -> Layout {
        let half = capacity_bytes.saturating_sub(HEADER_BYTES) / 2;
        Layout {
            region_bytes: half / REGION_ALIGN_BYTES * REGION_ALIGN_BYTES,
            regions: 2,
        }
    }

    /// One region to the end of the file (format 1).
    pub fn whole() -> Layout {
        Layout {
            region_bytes: u64::MAX - HEADER_BYTES,
            regions: 1,
        }
    }

    /// `[start, end)` of region `r`.
    pub fn region(&self, r: u64) -> (u64, u64) {
        let start = HEADER_BYTES + r * self.region_bytes;
        (start, start.saturating_add(self.region_bytes))
    }

    pub fn region_bytes(&self) -> u64 {
        self.region_bytes
    }
}

/// The records one region holds in a row from its start (each gen one more than the one
/// before), where they end, and why the region ends there.
struct Run {
    records: Vec<Record>,
    end: u64,
    end_why: String,
}

/// Reads the run of records at `start`; `bytes` ends where the region ends. A record of a
/// gen beyond the next one is damage; an older one is a pass from before and ends the run.
fn run_at(path: &Path, bytes: &[u8], start: u64) -> Result<Run, WalError> {
    let mut offset = start;
    let mut records: Vec<Record> = Vec::new();
    let mut end_why = String::from("unreadable record header");
    loop {
        match slot_at(bytes, offset) {
            Slot::Record(r, next) => {
                if let Some(due) = records.last().map(|last| last.gen + 1) {
                    if r.gen > due {
                        return Err(WalError::Damaged {
                            path: path.to_path_buf(),
                            offset,
                            why: format!("gen {} where gen {due} was due", r.gen),
                        });
                    }
                    if r.gen < due {
                        break; // an older pass over the region: the run ends before it
                    }
                }
                records.push(r);
                offset = next;
            }
            Slot::Nothing => break,
            Slot::Bad(why) => {
                end_why = why;
                break;
            }
        }
    }
    Ok(Run {
        records,
        end: offset,
        end_why,
    })
}

/// The end of a run: a torn tail — unless a valid record the run should have reached lies
/// beyond it in its region (gen `gen_min` or later), which means a record (or its header)
/// before the tail is damaged.
fn check_tail(path: &Path, bytes: &[u8], run: &Run, gen_min: u64) -> Result<(), WalError> {
    match find_later(bytes, run.end + RECORD_ALIGN_BYTES as u64, gen_min) {
        Some(later) => Err(WalError::Damaged {
            path: path.to_path_buf(),
            offset: run.end,
            why: format!("{}; a record of gen {later} follows", run.end_why),
        }),
        None => Ok(()),
    }
}

/// The bytes of region `r`: the file's, cut where the region ends.
fn region_bytes<'a>(bytes: &'a [u8], layout: &Layout, r: u64) -> (&'a [u8], u64) {
    let (start, end) = layout.region(r);
    let end = usize::try_from(end).unwrap_or(usize::MAX).min(bytes.len());
    (&bytes[..end], start)
}

/// The records to apply after redb's checkpointed `gen_durable`, in order. `bytes` is the
/// whole file, laid out as `layout` says.
pub fn scan(path: &Path, bytes: &[u8], gen_durable: u64, layout: Layout) -> Result<Vec<Record>, WalError> {
    let mut records = Vec::new();
    for r in 0..layout.regions {
        let (region, start) = region_bytes(bytes, &layout, r);
        let run = run_at(path, region, start)?;
        let due = run.records.last().map_or(gen_durable + 1, |last| last.gen + 1);
        check_tail(path, region, &run, due.max(gen_durable + 1))?;
        records.extend(run.records.into_iter().filter(|rec| rec.gen > gen_durable));
    }
    records.sort_unstable_by_key(|rec| rec.gen);
    // From both regions together, every gen after the data file's, none missing.
    for (due, rec) in (gen_durable + 1..).zip(&records) {
        if rec.gen != due {
            return Err(WalError::Damaged {
                path: path.to_path_buf(),
                offset: rec.offset,
                why: format!("gen {} where gen {due} was due", rec.gen),
            });
        }
    }
    Ok(records)
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
    let header = read_header(path, &head)?;
    if header.clean {
        return Ok(None); // every record is in the data file
    }
    let layout = header.layout;
    let mut bytes = head;
    file.read_to_end(&mut bytes).map_err(io)?;
    // Without the data file's gen, each region's run is checked on its own from its first
    // record (the gens between the regions are checked by `scan`, which knows it).
    for r in 0..layout.regions {
        let (region, start) = region_bytes(&bytes, &layout, r);
        if let Slot::Record(first, _) = slot_at(region, start) {
            let run = run_at(path, region, start)?;
            let due = run.records.last().map_or(first.gen, |last| last.gen + 1);
            check_tail(path, region, &run, due)?;
        }
    }
    Ok(Some(header.file_id))
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
    /// Where new records go (an older layout found in the header is read by `scan`).
    layout: Layout,
    /// The header names another layout: [`Wal::make_room`] zeroes the records.
    relayout: bool,
    file_id: [u8; 16],
    /// Tests: every write and sync fails while set (a broken disk under the log).
    #[cfg(test)]
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

impl Wal {
    /// Opens (or creates and preallocates) the log of a data file whose id is `file_id`,
    /// checks its header and returns it with the whole file's bytes for [`scan`].
    pub fn open(path: &Path, file_id: [u8; 16], capacity_bytes: u64) -> Result<(Wal, Vec<u8>), WalError> {
        let capacity_bytes = capacity_bytes.max(CAPACITY_MIN_BYTES);
        let io = |e| WalError::Io(path.to_path_buf(), e);
        let exists = std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
        if !exists {
            let wal = Wal::create(path, file_id, capacity_bytes)?;
            return Ok((wal, Vec::new()));
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let header = read_header(path, &head_of(&mut file).map_err(io)?)?;
        let clean = header.clean;
        if header.file_id != file_id {
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
        let capacity_bytes = size.max(capacity_bytes);
        let layout = Layout::halves(capacity_bytes);
        let wal = Wal {
            path: path.to_path_buf(),
            file,
            capacity_bytes,
            layout,
            relayout: header.layout != layout,
            file_id,
            #[cfg(test)]
            failing: Default::default(),
        };
        Ok((wal, bytes))
    }

    /// Zero-fills the file up to its capacity — all of it after the header when the
    /// regions changed size, since records of the old layout could then lie where the scan
    /// takes them for newer ones (module doc). Call once recovery has read the log and its
    /// records are in the data file: opening changes nothing until then.
    pub fn make_room(&mut self) -> Result<(), WalError> {
        let size = self
            .file
            .metadata()
            .map_err(|e| WalError::Io(self.path.clone(), e))?
            .len();
        let from = if self.relayout { HEADER_BYTES } else { size };
        if from < self.capacity_bytes {
            self.zero_fill(from, self.capacity_bytes)?;
        }
        self.relayout = false;
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
            layout: Layout::halves(capacity_bytes),
            relayout: false,
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
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(HEADER_MAGIC);
        h.extend_from_slice(&HEADER_VERSION.to_le_bytes());
        h.extend_from_slice(&(if clean { FLAG_CLEAN } else { 0 }).to_le_bytes());
        h.extend_from_slice(&self.file_id);
        h.extend_from_slice(&self.layout.region_bytes.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        self.write_at(&h, 0)
            .and_then(|()| self.sync())
            .map_err(|e| WalError::Io(self.path.clone(), e))
    }

    /// Where new records go: two regions of `[HEADER_BYTES, capacity)`.
    pub fn layout(&self) -> Layout {
        self.layout
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

/// What a log's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub file_id: [u8; 16],
    /// Marked clean: every record was checkpointed into the data file.
    pub clean: bool,
    pub layout: Layout,
}

/// Reads and checks the header at the start of `bytes`.
pub fn read_header(path: &Path, bytes: &[u8]) -> Result<Header, WalError> {
    let bad = |why: &str| WalError::NotALog(path.to_path_buf(), why.to_string());
    let h = bytes.get(..16).ok_or_else(|| bad("shorter than its header"))?;
    if &h[..8] != HEADER_MAGIC {
        return Err(bad("no stockd log marker"));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let crc_at = match version {
        HEADER_VERSION_ONE_REGION => 32,
        HEADER_VERSION => 40,
        _ => {
            return Err(bad(&format!(
                "log format {version}, this binary reads {HEADER_VERSION_ONE_REGION} and {HEADER_VERSION}"
            )))
        }
    };
    let h = bytes.get(..crc_at + 4).ok_or_else(|| bad("shorter than its header"))?;
    let crc = u32::from_le_bytes([h[crc_at], h[crc_at + 1], h[crc_at + 2], h[crc_at + 3]]);
    if crc32fast::hash(&h[..crc_at]) != crc {
        return Err(bad("header checksum mismatch"));
    }
    let flags = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    let mut file_id = [0u8; 16];
    file_id.copy_from_slice(&h[16..32]);
    let layout = if version == HEADER_VERSION {
        let mut word = [0u8; 8];
        word.copy_from_slice(&h[32..40]);
        let region_bytes = u64::from_le_bytes(word);
        if region_bytes == 0 || region_bytes % REGION_ALIGN_BYTES != 0 {
            return Err(bad(&format!(
                "region size {region_bytes} is not a whole number of pages"
            )));
        }
        Layout {
            region_bytes,
            regions: 2,
        }
    } else {
        Layout::whole()
    };
    Ok(Header {
        file_id,
        clean: flags & FLAG_CLEAN != 0,
        layout,
    })
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

    /// One region, as format 1 has.
    fn scan1(bytes: &[u8], gen_durable: u64) -> Result<Vec<Record>, WalError> {
        scan(Path::new(P), bytes, gen_durable, Layout::whole())
    }

    const REGION: u64 = 8192;

    fn two() -> Layout {
        Layout::halves(HEADER_BYTES + 2 * REGION)
    }

    /// A two-region log: `first` from region 0's start, `second` from region 1's.
    fn log_of_two(first: &[(u64, &[u8])], second: &[(u64, &[u8])]) -> Vec<u8> {
        let mut bytes = log_of(first, (HEADER_BYTES + REGION) as usize);
        let mut region = Vec::new();
        for (gen, payload) in second {
            encode_record(*gen, payload, &mut region);
        }
        region.resize(REGION as usize, 0);
        bytes.extend_from_slice(&region);
        bytes
    }

    #[test]
    fn records_after_the_checkpoint_are_applied_in_order() {
        let bytes = log_of(&[(5, b"a"), (6, b"bb"), (7, b"ccc")], 8192);
        let records = scan1(&bytes, 4).unwrap();
        assert_eq!(gens(&records), vec![5, 6, 7]);
        assert_eq!(records[2].payload, b"ccc");
        assert_eq!(records[2].offset, HEADER_BYTES + record_bytes(1) + record_bytes(2));
        assert_eq!(gens(&scan1(&bytes, 6).unwrap()), vec![7]);
        assert!(scan1(&bytes, 7).unwrap().is_empty());
    }

    #[test]
    fn both_regions_are_read_in_gen_order() {
        assert_eq!(two().region(1), (HEADER_BYTES + REGION, HEADER_BYTES + 2 * REGION));
        // A checkpoint at gen 7 moved the log to region 1, its record first; region 0 keeps
        // 5 and 6 until the checkpoint's background fsync is done.
        let bytes = log_of_two(&[(5, b"a"), (6, b"bb")], &[(7, b"ccc"), (8, b"d")]);
        // The crash came before that fsync: the data file is at gen 4.
        assert_eq!(gens(&scan(Path::new(P), &bytes, 4, two()).unwrap()), vec![5, 6, 7, 8]);
        // After it: region 0 is covered.
        assert_eq!(gens(&scan(Path::new(P), &bytes, 7, two()).unwrap()), vec![8]);
        // The writer came back to region 0 at the next checkpoint (gen 9): the records
        // after the new run are an older pass.
        let mut back = bytes.clone();
        let mut fresh = Vec::new();
        encode_record(9, b"nine", &mut fresh);
        let at = HEADER_BYTES as usize;
        back[at..at + fresh.len()].copy_from_slice(&fresh);
        assert_eq!(gens(&scan(Path::new(P), &back, 7, two()).unwrap()), vec![8, 9]);
        assert_eq!(gens(&scan(Path::new(P), &back, 9, two()).unwrap()), Vec::<u64>::new());
    }

    #[test]
    fn a_gen_missing_between_the_regions_is_damage() {
        let bytes = log_of_two(&[(5, b"a")], &[(7, b"ccc")]);
        match scan(Path::new(P), &bytes, 4, two()) {
            Err(WalError::Damaged { offset, .. }) => assert_eq!(offset, HEADER_BYTES + REGION),
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn a_torn_first_record_of_the_new_region_is_a_tail() {
        let whole = log_of_two(&[(5, b"a"), (6, b"bb")], &[(7, b"the checkpoint's record")]);
        let start = (HEADER_BYTES + REGION) as usize;
        for cut in start..start + RECORD_HEADER_BYTES + 23 {
            let mut bytes = whole[..cut].to_vec();
            bytes.resize(whole.len(), 0);
            let records = scan(Path::new(P), &bytes, 4, two()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(gens(&records), vec![5, 6], "cut at {cut}");
        }
    }

    #[test]
    fn precheck_reads_each_region_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb.wal");
        let (wal, _) = Wal::open(&path, [3; 16], HEADER_BYTES + 2 * REGION).unwrap();
        assert_eq!(wal.layout(), two());
        let bytes = log_of_two(&[(5, b"a"), (6, b"bb")], &[(7, b"ccc"), (8, b"d"), (9, b"e")]);
        wal.write_at(&bytes[HEADER_BYTES as usize..], HEADER_BYTES).unwrap();
        wal.sync().unwrap();
        assert_eq!(precheck(&path).unwrap(), Some([3; 16]));
        // A damaged record with a later one after it, in region 1.
        let mut damaged = bytes[HEADER_BYTES as usize..].to_vec();
        damaged[REGION as usize + record_bytes(3) as usize + RECORD_HEADER_BYTES] ^= 0x40;
        wal.write_at(&damaged, HEADER_BYTES).unwrap();
        assert!(matches!(precheck(&path), Err(WalError::Damaged { .. })));
    }

    #[test]
    fn new_region_sizes_zero_the_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb.wal");
        let (wal, _) = Wal::open(&path, [4; 16], HEADER_BYTES + 2 * REGION).unwrap();
        // A record at the start of region 1, which lies inside region 0 of a larger log.
        let mut rec = Vec::new();
        encode_record(18, b"old", &mut rec);
        wal.write_at(&rec, HEADER_BYTES + REGION).unwrap();
        drop(wal);
        let (mut wal, bytes) = Wal::open(&path, [4; 16], HEADER_BYTES + 4 * REGION).unwrap();
        assert_eq!(
            read_header(&path, &bytes).unwrap().layout,
            two(),
            "read with the old layout"
        );
        wal.make_room().unwrap();
        wal.write_header(false).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header = read_header(&path, &bytes).unwrap();
        assert_eq!(header.layout.region_bytes(), 2 * REGION);
        assert_eq!(bytes.len() as u64, HEADER_BYTES + 4 * REGION);
        assert!(bytes[HEADER_BYTES as usize..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_format_one_header_is_read_as_one_region() {
        let mut h = Vec::new();
        h.extend_from_slice(HEADER_MAGIC);
        h.extend_from_slice(&HEADER_VERSION_ONE_REGION.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&[9; 16]);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        let header = read_header(Path::new(P), &h).unwrap();
        assert_eq!(
            (header.file_id, header.clean, header.layout),
            ([9; 16], false, Layout::whole())
        );
    }

    #[test]
    fn an_older_epoch_after_the_tail_ends_the_scan() {
        // Epoch 1 wrote gens 1..=4; checkpoint at 4; epoch 2 overwrote the first slot with 5.
        let mut bytes = log_of(&[(1, b"xxxxxxxx"), (2, b"y"), (3, b"z"), (4, b"w")], 8192);
        let mut fresh = Vec::new();
        encode_record(5, b"new", &mut fresh);
        bytes[HEADER_BYTES as usize..HEADER_BYTES as usize + fresh.len()].copy_from_slice(&fresh);
        assert_eq!(gens(&scan1(&bytes, 4).unwrap()), vec![5]);
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
            let records = scan1(&bytes, 0).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(gens(&records), vec![1, 2], "cut at {cut}");
        }
        // And a tail whose bytes are garbage instead of zeros.
        for cut in last_start..last_end {
            let mut bytes = whole.clone();
            for b in &mut bytes[cut..] {
                *b = 0xA5;
            }
            let records = scan1(&bytes, 0).unwrap_or_else(|e| panic!("garbage at {cut}: {e}"));
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
            match scan1(&damaged, 0) {
                Err(WalError::Damaged { offset, .. }) => assert_eq!(offset, second as u64, "flip at {at}"),
                other => panic!("flip at {at}: expected damage, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_gap_between_the_data_file_and_the_log_is_damage() {
        let bytes = log_of(&[(9, b"nine")], 8192);
        assert!(matches!(scan1(&bytes, 4), Err(WalError::Damaged { .. })));
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
        assert_eq!(
            gens(&scan(&path, &bytes, 0, read_header(&path, &bytes).unwrap().layout).unwrap()),
            vec![1]
        );
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
