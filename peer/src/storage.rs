//! Where a torrent's bytes live on disk: verified pieces are written file by
//! file, and a seeder's (or a resumed download's) pieces are read back.
//!
//! File names come from the torrent, which may come from anyone: a path
//! component that could leave the target directory is refused up front.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use swarm::metainfo::Info;

/// The files of one torrent on disk.
#[derive(Debug, Clone)]
pub struct Storage {
    info: Info,
    paths: Vec<PathBuf>,
    /// The files written to ([`Storage::writing_only`]); `None`: all.
    written: Option<Vec<usize>>,
}

/// Why the files of a torrent could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file path in the torrent is absolute, empty or climbs out (`..`).
    #[error("unsafe file path in torrent: {0:?}")]
    UnsafePath(Vec<String>),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl Storage {
    /// Storage for `info` at `target`: the file itself for a single-file
    /// torrent, the directory holding the torrent's files otherwise.
    pub fn new(info: &Info, target: &Path) -> Result<Storage, StorageError> {
        let paths = if info.is_single_file() {
            vec![target.to_path_buf()]
        } else {
            // Entry paths start with the torrent's name, which `target` is.
            info.files
                .iter()
                .map(|file| safe_join(target, file.path.get(1..).unwrap_or_default()))
                .collect::<Result<_, _>>()?
        };
        Ok(Storage {
            info: info.clone(),
            paths,
            written: None,
        })
    }

    /// Writes only `files` (indexes into the torrent's: `get --file N`):
    /// of a piece shared with a neighbour, only the selected files' bytes
    /// go to disk, so the output is exactly those files and no neighbour's
    /// file is made, holding a few of its bytes at its start or end (or
    /// zeros up to them). Reading is unchanged: such a piece reads as
    /// missing while its neighbour is not on disk, and is fetched again.
    pub fn writing_only(mut self, files: &[usize]) -> Storage {
        self.written = Some(files.to_vec());
        self
    }

    /// The files, in torrent order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The bytes of `piece` as found on disk, `None` when a file is missing
    /// or too short (not yet downloaded). The caller verifies them.
    pub fn read_piece(&self, piece: u32) -> Result<Option<Vec<u8>>, StorageError> {
        let mut data = Vec::with_capacity(self.info.piece_size(piece) as usize);
        for slice in self.info.piece_file_slices(piece) {
            let path = self.path(slice.file)?;
            let mut file = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(io_error(path, source)),
            };
            let start = data.len();
            data.resize(start + slice.length as usize, 0);
            let buffer = data.get_mut(start..).unwrap_or_default();
            let read = file
                .seek(SeekFrom::Start(slice.offset))
                .and_then(|_| file.read_exact(buffer));
            match read {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(source) => return Err(io_error(path, source)),
            }
        }
        Ok(Some(data))
    }

    /// Writes a verified piece into the files it spans (those written to:
    /// [`Storage::writing_only`]), creating them (and their directories)
    /// as needed.
    pub fn write_piece(&self, piece: u32, data: &[u8]) -> Result<(), StorageError> {
        let mut rest = data;
        for slice in self.info.piece_file_slices(piece) {
            let (head, tail) = rest.split_at((slice.length as usize).min(rest.len()));
            rest = tail;
            if self
                .written
                .as_ref()
                .is_some_and(|w| !w.contains(&slice.file))
            {
                continue;
            }
            let path = self.path(slice.file)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| io_error(path, e))?;
            file.seek(SeekFrom::Start(slice.offset))
                .and_then(|_| file.write_all(head))
                .map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }

    fn path(&self, file: usize) -> Result<&Path, StorageError> {
        // Slices only name files of this torrent, which all have a path.
        self.paths
            .get(file)
            .map(PathBuf::as_path)
            .ok_or_else(|| StorageError::UnsafePath(Vec::new()))
    }
}

/// `root` + the torrent's path components, refusing any that could escape.
fn safe_join(root: &Path, components: &[String]) -> Result<PathBuf, StorageError> {
    let mut path = root.to_path_buf();
    if components.is_empty() {
        return Err(StorageError::UnsafePath(components.to_vec()));
    }
    for component in components {
        let mut parts = Path::new(component).components();
        let safe = matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ) && !component.contains(['/', '\\']);
        if !safe {
            return Err(StorageError::UnsafePath(components.to_vec()));
        }
        path.push(component);
    }
    Ok(path)
}

fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm::metainfo::{Metainfo, TorrentBuilder, hash_pieces};

    fn torrent(files: &[(&str, usize)], piece_length: u32) -> (Metainfo, Vec<u8>) {
        let data: Vec<u8> = (0..files.iter().map(|f| f.1).sum::<usize>())
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let builder = TorrentBuilder::multi_file(
            "album",
            files
                .iter()
                .map(|(name, len)| (vec![(*name).to_owned()], *len as u64))
                .collect::<Vec<_>>(),
        )
        .piece_length(piece_length);
        let meta = builder
            .build(&hash_pieces(&data, piece_length).unwrap())
            .unwrap();
        (meta, data)
    }

    #[test]
    fn pieces_spanning_files_round_trip() {
        let (meta, data) = torrent(&[("a.mp3", 40_000), ("b.mp3", 30_000)], 16_384);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(&meta.info, &dir.path().join("album")).unwrap();
        // In stream order, each piece lies past the end of what is written.
        for piece in 0..meta.info.piece_count() {
            assert_eq!(storage.read_piece(piece).unwrap(), None);
            let start = meta.info.piece_offset(piece) as usize;
            let end = start + meta.info.piece_size(piece) as usize;
            storage.write_piece(piece, &data[start..end]).unwrap();
            let read = storage.read_piece(piece).unwrap();
            assert!(read.as_deref() == Some(&data[start..end]), "piece {piece}");
        }
        let a = std::fs::read(dir.path().join("album/a.mp3")).unwrap();
        let b = std::fs::read(dir.path().join("album/b.mp3")).unwrap();
        assert_eq!([a, b].concat(), data);
    }

    #[test]
    fn one_file_of_an_album_is_written_exactly() {
        // Pieces of 16 KiB: b.mp3 shares its first piece with a.mp3 and
        // its last with c.mp3.
        let (meta, data) = torrent(
            &[("a.mp3", 40_000), ("b.mp3", 30_000), ("c.mp3", 20_000)],
            16_384,
        );
        let dir = tempfile::tempdir().unwrap();
        let album = dir.path().join("album");
        let storage = Storage::new(&meta.info, &album).unwrap().writing_only(&[1]);
        let pieces = meta.info.file_pieces(1).unwrap();
        assert_eq!(pieces, 2..5, "boundary pieces on both sides");
        for piece in pieces {
            let start = meta.info.piece_offset(piece) as usize;
            let end = start + meta.info.piece_size(piece) as usize;
            storage.write_piece(piece, &data[start..end]).unwrap();
        }
        let b = std::fs::read(album.join("b.mp3")).unwrap();
        assert_eq!(b.len(), 30_000, "the file's length");
        assert!(b == data[40_000..70_000], "the file's bytes");
        for neighbour in ["a.mp3", "c.mp3"] {
            assert!(!album.join(neighbour).exists(), "{neighbour} not written");
        }
        // A boundary piece reads as missing without its neighbour.
        assert_eq!(storage.read_piece(2).unwrap(), None);
        assert!(storage.read_piece(3).unwrap().is_some());
    }

    #[test]
    fn paths_that_climb_out_are_refused() {
        let root = Path::new("/tmp/x");
        for bad in [vec![".."], vec!["a", "../b"], vec!["/etc"], vec![]] {
            let components: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(
                matches!(
                    safe_join(root, &components),
                    Err(StorageError::UnsafePath(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            safe_join(root, &["a".into(), "b.mp3".into()]).unwrap(),
            root.join("a/b.mp3")
        );
    }
}
