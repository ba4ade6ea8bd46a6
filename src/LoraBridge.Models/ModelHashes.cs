using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraBridge.Models;

/// <summary>The hashes A1111 v1.10.1 computes for model files (<c>modules/hashes.py</c>, <c>modules/sd_models.py</c>).</summary>
public static class ModelHashes
{
    /// <summary>
    /// kohya's "addnet" hash (A1111 <c>hashes.addnet_hash_safetensors</c>): SHA-256 of every byte after the header,
    /// so editing metadata does not change it. Lowercase hex.
    /// </summary>
    public static string AddnetSha256(string path)
    {
        using var stream = OpenRead(path);
        if (stream.Length < 8)
            throw new ModelFileException(path, $"truncated: {stream.Length} bytes, cannot read the header length");
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong n = BitConverter.ToUInt64(len);
        // A1111 seeks to n + 8 whatever n is; past the end that hashes nothing. Keep the same result.
        ulong length = (ulong)stream.Length;
        stream.Position = (long)(n >= length ? length : Math.Min(n + 8, length));
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>SHA-256 of the whole file (A1111 <c>hashes.calculate_sha256</c>). Lowercase hex.</summary>
    public static string FileSha256(string path)
    {
        using var stream = OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// The old checkpoint hash (A1111 <c>sd_models.model_hash</c>, <c>CheckpointInfo.hash</c>): SHA-256 of the 0x10000 bytes
    /// at offset 0x100000 (fewer, or none, for short files), first 8 hex characters. A1111 still accepts it as a checkpoint
    /// id; since v1.1 its infotext <c>Model hash</c> is the 10-character short SHA-256 instead.
    /// </summary>
    public static string OldModelHash(string path)
    {
        using var stream = OpenRead(path);
        var buffer = new byte[0x10000];
        int read = 0;
        if (stream.Length > 0x100000)
        {
            stream.Position = 0x100000;
            read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer.AsSpan(0, read)))[..8];
    }

    private static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
}

/// <summary>Which hash of a file a cache entry holds.</summary>
public enum HashKind
{
    /// <summary>SHA-256 of the bytes after the safetensors header.</summary>
    Addnet,
    /// <summary>SHA-256 of the whole file.</summary>
    FullFile,
}

/// <summary>
/// A JSON file of computed hashes keyed by absolute path and kind, valid while the file's size and modification time
/// are unchanged. Thread-safe; written atomically after each new hash.
/// </summary>
public sealed class HashCache
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries;
    private bool _unsaved;

    private readonly LoraIndex? _index;

    /// <summary>Opens (or starts) the cache at <paramref name="cacheFile"/>; null keeps it in memory only.</summary>
    public HashCache(string? cacheFile)
    {
        CacheFile = cacheFile;
        _entries = Load(cacheFile);
    }

    /// <summary>A cache kept in the catalog index (one row per hash, no rewrite of a whole file per new hash).</summary>
    public static HashCache InIndex(LoraIndex index) => new(index);

    private HashCache(LoraIndex index)
    {
        _index = index;
        _entries = new(StringComparer.Ordinal);
        try
        {
            foreach (var (key, (size, mtime, value)) in index.AllHashes())
                _entries[key] = new Entry { Size = size, MtimeTicks = mtime, Sha256 = value };
        }
        catch (Microsoft.Data.Sqlite.SqliteException) { } // a damaged index only costs recomputation
    }

    /// <summary>The backing file, or null for an in-memory cache.</summary>
    public string? CacheFile { get; }

    /// <summary>How many hashes were computed (not served from the cache) by this instance.</summary>
    public int ComputedCount { get; private set; }

    /// <summary>Returns the cached hash if the file is unchanged, else null.</summary>
    public string? TryGet(string path, HashKind kind)
    {
        var (key, size, mtime) = Identity(path, kind);
        lock (_gate)
            return _entries.TryGetValue(key, out var e) && e.Size == size && e.MtimeTicks == mtime ? e.Sha256 : null;
    }

    /// <summary>The cached hash for a file known to have <paramref name="size"/> and <paramref name="mtimeTicks"/> (no stat), else null.</summary>
    public string? TryGet(string path, HashKind kind, long size, long mtimeTicks)
    {
        string key = $"{kind}:{Path.GetFullPath(path)}";
        lock (_gate)
            return _entries.TryGetValue(key, out var e) && e.Size == size && e.MtimeTicks == mtimeTicks ? e.Sha256 : null;
    }

    /// <summary>Returns the hash, computing and storing it when the cache has none for the current size and mtime.</summary>
    public string GetOrCompute(string path, HashKind kind) => GetOrCompute(path, kind, deferSave: false);

    /// <summary>
    /// As <see cref="GetOrCompute(string, HashKind)"/>; with <paramref name="deferSave"/> the file is written by
    /// <see cref="SaveIfChanged"/> instead of after every new hash (a scan of many small files would rewrite the whole
    /// cache once per file).
    /// </summary>
    public string GetOrCompute(string path, HashKind kind, bool deferSave)
    {
        var cached = TryGet(path, kind);
        if (cached is not null) return cached;
        var (key, size, mtime) = Identity(path, kind);
        string hash = kind == HashKind.Addnet ? ModelHashes.AddnetSha256(path) : ModelHashes.FileSha256(path);
        lock (_gate)
        {
            _entries[key] = new Entry { Size = size, MtimeTicks = mtime, Sha256 = hash };
            ComputedCount++;
            if (_index is not null)
            {
                try { _index.PutHash(key, size, mtime, hash); }
                catch (Microsoft.Data.Sqlite.SqliteException) { } // kept in memory for this process
            }
            else if (deferSave) _unsaved = true;
            else Save();
        }
        return hash;
    }

    private static (string Key, long Size, long Mtime) Identity(string path, HashKind kind)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found", path);
        return ($"{kind}:{info.FullName}", info.Length, info.LastWriteTimeUtc.Ticks);
    }

    private static Dictionary<string, Entry> Load(string? file)
    {
        if (file is null || !File.Exists(file)) return new(StringComparer.Ordinal);
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(file), HashCacheJson.Default.DictionaryStringEntry)
                   ?? new(StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            // A damaged cache only costs recomputation; it must not stop the catalog.
            return new(StringComparer.Ordinal);
        }
    }

    /// <summary>Writes hashes computed with <c>deferSave</c>, if any.</summary>
    public void SaveIfChanged()
    {
        lock (_gate)
            if (_unsaved) Save();
    }

    private void Save()
    {
        _unsaved = false;
        if (CacheFile is null) return;
        // Exclusive temporary file + rename: a link planted at the cache's name or a predictable temp name is never written through.
        AtomicFile.Replace(CacheFile, JsonSerializer.SerializeToUtf8Bytes(_entries, HashCacheJson.Default.DictionaryStringEntry));
    }

    /// <summary>One cached hash (serialized form).</summary>
    public sealed class Entry
    {
        /// <summary>File size when hashed.</summary>
        public long Size { get; set; }

        /// <summary>Last write time (UTC ticks) when hashed.</summary>
        public long MtimeTicks { get; set; }

        /// <summary>Lowercase hex SHA-256.</summary>
        public string Sha256 { get; set; } = "";
    }
}

[JsonSerializable(typeof(Dictionary<string, HashCache.Entry>))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class HashCacheJson : JsonSerializerContext;
