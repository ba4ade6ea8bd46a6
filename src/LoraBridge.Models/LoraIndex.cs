using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Sqlite;

namespace LoraBridge.Models;

/// <summary>
/// Persistent catalog index (SQLite, WAL) in the data folder: one row per LoRA-family file keyed by path, with the
/// size and modification time it was read at, a signature of its sidecars (name, size, mtime of each present
/// <c>.json</c>, <c>.civitai.info</c>, preview and description file), the facts read from its header and sidecars,
/// its metadata (read lazily) and computed hashes. A sync stats the files (one directory listing per folder) and
/// reads only new or changed ones; rows of files that are gone are deleted. Several processes may use one index;
/// a damaged index file is deleted and rebuilt, and when even that fails the catalog works without one.
/// </summary>
public sealed class LoraIndex
{
    private const int SchemaVersion = 2;
    private readonly string _connectionString;

    private LoraIndex(string path)
    {
        DatabasePath = path;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false, DefaultTimeout = 30 }.ToString();
    }

    /// <summary>The database file.</summary>
    public string DatabasePath { get; }

    /// <summary>Files read (not served from the index) by the last <see cref="Sync"/>.</summary>
    public int LastReread { get; private set; }

    /// <summary>Rows deleted by the last <see cref="Sync"/> (files that are gone).</summary>
    public int LastRemoved { get; private set; }

    /// <summary>Set when the index file was damaged and rebuilt (a message for the user), else null.</summary>
    public string? Notice { get; private set; }

    /// <summary>Opens or creates the index at <paramref name="path"/>; a damaged file is rebuilt. Null when no index can be used (the reason in <paramref name="problem"/>).</summary>
    public static LoraIndex? Open(string path, out string? problem)
    {
        problem = null;
        var index = new LoraIndex(path);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            index.Initialize();
            return index;
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            try
            {
                index.Rebuild(e.Message);
                return index;
            }
            catch (Exception e2) when (e2 is SqliteException or IOException or UnauthorizedAccessException or InvalidDataException)
            {
                problem = $"{path}: catalog index unusable ({e2.Message}); scanning without it";
                return null;
            }
        }
    }

    /// <summary>Deletes the index files and creates an empty index (after damage).</summary>
    internal void Rebuild(string reason)
    {
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm", "-journal" })
        {
            var f = DatabasePath + suffix;
            if (File.Exists(f)) File.Delete(f);
        }
        Initialize();
        Notice = $"{DatabasePath}: the catalog index was damaged ({reason}) and has been rebuilt";
    }

    private SqliteConnection Connect()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL;";
        cmd.ExecuteNonQuery();
        return c;
    }

    private void Initialize()
    {
        using var c = Connect();
        Exec(c, "PRAGMA journal_mode=WAL;");
        Exec(c, """
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS loras(path TEXT PRIMARY KEY, ord INTEGER NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
                sidecars TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, type TEXT NOT NULL, rank TEXT NOT NULL,
                metahash TEXT NOT NULL, a1111 INTEGER NOT NULL, family INTEGER NOT NULL, preview TEXT, description TEXT,
                error TEXT, extra TEXT, metadata TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS hashes(key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL, value TEXT NOT NULL);
            """);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key='schema'";
        var v = cmd.ExecuteScalar() as string;
        if (v is null) Exec(c, $"INSERT INTO meta(key, value) VALUES('schema', '{SchemaVersion}')");
        else if (v != SchemaVersion.ToString(System.Globalization.CultureInfo.InvariantCulture)) throw new InvalidDataException($"schema {v}, expected {SchemaVersion}");
        // Reading every table proves the file is a usable database (a damaged page fails here, not mid-command).
        Exec(c, "SELECT count(*) FROM loras; SELECT count(*) FROM hashes;");
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Entries for <paramref name="files"/> (in that order): unchanged files (same size, mtime and sidecars) from the
    /// index, the others read with <paramref name="read"/> and stored; rows of files not in the list are deleted.
    /// </summary>
    public IReadOnlyList<LoraEntry> Sync(IReadOnlyList<string> files, Func<string, LoraEntry> read)
    {
        using var c = Connect();
        var rows = new Dictionary<string, (int Ord, long Size, long Mtime, string Sidecars, LoraEntry? Entry)>(StringComparer.Ordinal);
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = $"SELECT path, ord, size, mtime, sidecars, {FactColumns} FROM loras";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                string path = r.GetString(0);
                rows[path] = (r.GetInt32(1), r.GetInt64(2), r.GetInt64(3), r.GetString(4), FromRow(r, 5, path, r.GetInt64(2), r.GetInt64(3)));
            }
        }
        var listings = new Dictionary<string, Listing>(StringComparer.Ordinal);
        var entries = new List<LoraEntry>(files.Count);
        var writes = new List<(int Ord, string Path, long Size, long Mtime, string Sidecars, LoraEntry? Entry)>();
        for (int i = 0; i < files.Count; i++)
        {
            string file = files[i];
            string dir = Path.GetDirectoryName(file) ?? "";
            if (!listings.TryGetValue(dir, out var listing)) listings[dir] = listing = List(dir);
            var (size, mtime) = listing.Files.TryGetValue(Path.GetFileName(file), out var st) ? st : Stat(file);
            string sidecars = listing.Signature(Path.GetFileNameWithoutExtension(file));
            if (rows.TryGetValue(file, out var row) && row.Size == size && row.Mtime == mtime && row.Sidecars == sidecars
                && row.Entry is { } cached)
            {
                entries.Add(cached);
                if (row.Ord != i) writes.Add((i, file, size, mtime, sidecars, null));
                continue;
            }
            var entry = read(file);
            entries.Add(entry);
            writes.Add((i, file, size, mtime, sidecars, entry));
        }
        var seen = new HashSet<string>(files, StringComparer.Ordinal);
        var gone = rows.Keys.Where(p => !seen.Contains(p)).ToList();
        LastReread = writes.Count(w => w.Entry is not null);
        LastRemoved = gone.Count;
        if (writes.Count > 0 || gone.Count > 0) Write(c, writes, gone);
        return entries;
    }

    /// <summary>Every indexed entry in the last scan order, without touching the files (unverified).</summary>
    public IReadOnlyList<LoraEntry> LoadAll()
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT path, size, mtime, {FactColumns} FROM loras ORDER BY ord";
        using var r = cmd.ExecuteReader();
        var list = new List<LoraEntry>();
        while (r.Read())
            if (FromRow(r, 3, r.GetString(0), r.GetInt64(1), r.GetInt64(2)) is { } e) list.Add(e);
        return list;
    }

    /// <summary>True when the index has rows (a scan has been recorded).</summary>
    public bool HasRows()
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT EXISTS(SELECT 1 FROM loras)";
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) != 0;
    }

    /// <summary>
    /// Checks one entry against its file (stat of the file and its folder's sidecars): the same entry when unchanged,
    /// a freshly read one (stored) when changed, null when the file is gone.
    /// </summary>
    public LoraEntry? Verify(LoraEntry entry, Func<string, LoraEntry> read)
    {
        string file = entry.FilePath;
        if (!File.Exists(file)) return null;
        var listing = List(Path.GetDirectoryName(file) ?? "");
        var (size, mtime) = listing.Files.TryGetValue(Path.GetFileName(file), out var st) ? st : Stat(file);
        string sidecars = listing.Signature(Path.GetFileNameWithoutExtension(file));
        using var c = Connect();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT ord, size, mtime, sidecars FROM loras WHERE path=$p";
            cmd.Parameters.AddWithValue("$p", file);
            using var r = cmd.ExecuteReader();
            if (r.Read() && r.GetInt64(1) == size && r.GetInt64(2) == mtime && r.GetString(3) == sidecars) return entry;
        }
        var fresh = read(file);
        int ord;
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT ord FROM loras WHERE path=$p";
            cmd.Parameters.AddWithValue("$p", file);
            ord = cmd.ExecuteScalar() is long o ? (int)o : int.MaxValue;
        }
        Write(c, [(ord, file, size, mtime, sidecars, fresh)], []);
        return fresh;
    }

    /// <summary>The stored metadata of a file (empty when none).</summary>
    public IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        try
        {
            using var c = Connect();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT metadata FROM loras WHERE path=$p";
            cmd.Parameters.AddWithValue("$p", path);
            return cmd.ExecuteScalar() is string json
                ? JsonSerializer.Deserialize(json, LoraIndexJson.Default.DictionaryStringString) ?? new Dictionary<string, string>()
                : new Dictionary<string, string>();
        }
        catch (Exception e) when (e is SqliteException or JsonException)
        {
            return new Dictionary<string, string>();
        }
    }

    /// <summary>A cached hash when the file still has <paramref name="size"/> and <paramref name="mtime"/>, else null.</summary>
    public string? TryGetHash(string key, long size, long mtime)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT value FROM hashes WHERE key=$k AND size=$s AND mtime=$m";
        cmd.Parameters.AddWithValue("$k", key);
        cmd.Parameters.AddWithValue("$s", size);
        cmd.Parameters.AddWithValue("$m", mtime);
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>Every cached hash (key → size, mtime, value), for bulk lookups.</summary>
    public Dictionary<string, (long Size, long Mtime, string Value)> AllHashes()
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT key, size, mtime, value FROM hashes";
        using var r = cmd.ExecuteReader();
        var d = new Dictionary<string, (long, long, string)>(StringComparer.Ordinal);
        while (r.Read()) d[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2), r.GetString(3));
        return d;
    }

    /// <summary>Stores a computed hash.</summary>
    public void PutHash(string key, long size, long mtime, string value)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO hashes(key, size, mtime, value) VALUES($k, $s, $m, $v) ON CONFLICT(key) DO UPDATE SET size=$s, mtime=$m, value=$v";
        cmd.Parameters.AddWithValue("$k", key);
        cmd.Parameters.AddWithValue("$s", size);
        cmd.Parameters.AddWithValue("$m", mtime);
        cmd.Parameters.AddWithValue("$v", value);
        cmd.ExecuteNonQuery();
    }

    private static void Write(SqliteConnection c, IReadOnlyList<(int Ord, string Path, long Size, long Mtime, string Sidecars, LoraEntry? Entry)> writes, IReadOnlyList<string> gone)
    {
        using var tx = c.BeginTransaction();
        using (var upsert = c.CreateCommand())
        using (var reorder = c.CreateCommand())
        {
            upsert.Transaction = tx;
            upsert.CommandText = """
                INSERT INTO loras(path, ord, size, mtime, sidecars, name, alias, type, rank, metahash, a1111, family, preview, description, error, extra, metadata)
                VALUES($p, $o, $s, $m, $c, $name, $alias, $type, $rank, $mh, $a1111, $family, $preview, $desc, $error, $extra, $d)
                ON CONFLICT(path) DO UPDATE SET ord=$o, size=$s, mtime=$m, sidecars=$c, name=$name, alias=$alias, type=$type, rank=$rank,
                    metahash=$mh, a1111=$a1111, family=$family, preview=$preview, description=$desc, error=$error, extra=$extra, metadata=$d
                """;
            var p = upsert.Parameters.Add("$p", SqliteType.Text);
            var o = upsert.Parameters.Add("$o", SqliteType.Integer);
            var s = upsert.Parameters.Add("$s", SqliteType.Integer);
            var m = upsert.Parameters.Add("$m", SqliteType.Integer);
            var sc = upsert.Parameters.Add("$c", SqliteType.Text);
            var fName = upsert.Parameters.Add("$name", SqliteType.Text);
            var fAlias = upsert.Parameters.Add("$alias", SqliteType.Text);
            var fType = upsert.Parameters.Add("$type", SqliteType.Text);
            var fRank = upsert.Parameters.Add("$rank", SqliteType.Text);
            var fMh = upsert.Parameters.Add("$mh", SqliteType.Text);
            var fA1111 = upsert.Parameters.Add("$a1111", SqliteType.Integer);
            var fFamily = upsert.Parameters.Add("$family", SqliteType.Integer);
            var fPreview = upsert.Parameters.Add("$preview", SqliteType.Text);
            var fDesc = upsert.Parameters.Add("$desc", SqliteType.Text);
            var fError = upsert.Parameters.Add("$error", SqliteType.Text);
            var fExtra = upsert.Parameters.Add("$extra", SqliteType.Text);
            var d = upsert.Parameters.Add("$d", SqliteType.Text);
            reorder.Transaction = tx;
            reorder.CommandText = "UPDATE loras SET ord=$o WHERE path=$p";
            var rp = reorder.Parameters.Add("$p", SqliteType.Text);
            var ro = reorder.Parameters.Add("$o", SqliteType.Integer);
            foreach (var w in writes)
            {
                if (w.Entry is null)
                {
                    rp.Value = w.Path;
                    ro.Value = w.Ord;
                    reorder.ExecuteNonQuery();
                    continue;
                }
                p.Value = w.Path;
                o.Value = w.Ord;
                s.Value = w.Size;
                m.Value = w.Mtime;
                sc.Value = w.Sidecars;
                var e = w.Entry;
                fName.Value = e.Name;
                fAlias.Value = e.DeclaredAlias;
                fType.Value = e.NetworkType;
                fRank.Value = e.RankText;
                fMh.Value = e.MetadataHash ?? "";
                fA1111.Value = (int)e.A1111SdVersion;
                fFamily.Value = (int)e.Family;
                fPreview.Value = (object?)e.PreviewPath ?? DBNull.Value;
                fDesc.Value = (object?)e.DescriptionPath ?? DBNull.Value;
                fError.Value = (object?)e.Error ?? DBNull.Value;
                var extra = ToExtra(e);
                fExtra.Value = extra is null ? DBNull.Value : JsonSerializer.Serialize(extra, LoraIndexJson.Default.LoraExtra);
                d.Value = JsonSerializer.Serialize(new Dictionary<string, string>(w.Entry.Metadata), LoraIndexJson.Default.DictionaryStringString);
                upsert.ExecuteNonQuery();
            }
        }
        using (var delete = c.CreateCommand())
        {
            delete.Transaction = tx;
            delete.CommandText = "DELETE FROM loras WHERE path=$p";
            var dp = delete.Parameters.Add("$p", SqliteType.Text);
            foreach (var path in gone)
            {
                dp.Value = path;
                delete.ExecuteNonQuery();
            }
        }
        tx.Commit();
    }

    /// <summary>One folder listing: name → (size, mtime ticks) of every file, and sidecar signatures by stem.</summary>
    private sealed class Listing
    {
        public readonly Dictionary<string, (long Size, long Mtime)> Files = new(StringComparer.Ordinal);
        private Dictionary<string, System.Text.StringBuilder>? _sidecars;

        /// <summary>Name, size and mtime of every sidecar of <paramref name="stem"/>, in a fixed order.</summary>
        public string Signature(string stem)
        {
            if (_sidecars is null)
            {
                // One pass over the folder instead of a lookup per candidate name and file.
                _sidecars = new(StringComparer.Ordinal);
                foreach (var (name, st) in Files.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    foreach (var suffix in SidecarSuffixes)
                        if (name.Length > suffix.Length && name.EndsWith(suffix, StringComparison.Ordinal))
                        {
                            string s = name[..^suffix.Length];
                            if (!_sidecars.TryGetValue(s, out var sb)) _sidecars[s] = sb = new System.Text.StringBuilder();
                            sb.Append(suffix).Append(':').Append(st.Size).Append(':').Append(st.Mtime).Append(';');
                        }
            }
            return _sidecars.TryGetValue(stem, out var b) ? b.ToString() : "";
        }
    }

    private static Listing List(string dir)
    {
        var d = new Listing();
        try
        {
            foreach (var fi in new DirectoryInfo(dir).EnumerateFiles("*", new EnumerationOptions { IgnoreInaccessible = true, AttributesToSkip = 0, RecurseSubdirectories = false }))
            {
                try { d.Files[fi.Name] = (fi.Length, fi.LastWriteTimeUtc.Ticks); }
                catch (IOException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return d;
    }

    private static (long, long) Stat(string file)
    {
        try
        {
            var fi = new FileInfo(file);
            return fi.Exists ? (fi.Length, fi.LastWriteTimeUtc.Ticks) : (-1, -1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return (-1, -1); }
    }

    private static readonly string[] SidecarSuffixes =
        [".json", ".civitai.info", ".txt", ".description.txt",
         .. LoraCatalog.PreviewExtensions.SelectMany(e => new[] { "." + e, ".preview." + e })];

    private const string FactColumns = "name, alias, type, rank, metahash, a1111, family, preview, description, error, extra";

    private static LoraExtra? ToExtra(LoraEntry e) =>
        e.Warnings.Count == 0 && e.User.Path is null && e.Civitai.Path is null ? null : new LoraExtra
        {
            Warnings = [.. e.Warnings],
            User = e.User.Path is null ? null : new UserFacts
            {
                Path = e.User.Path, Description = e.User.Description, ActivationText = e.User.ActivationText, PreferredWeight = e.User.PreferredWeight,
                NegativeText = e.User.NegativeText, SdVersion = e.User.SdVersion, Notes = e.User.Notes,
            },
            Civitai = e.Civitai.Path is null ? null : new CivitaiFacts
            {
                Path = e.Civitai.Path, TrainedWords = [.. e.Civitai.TrainedWords], BaseModel = e.Civitai.BaseModel,
                ModelName = e.Civitai.ModelName, VersionName = e.Civitai.VersionName,
            },
        };

    private LoraEntry? FromRow(SqliteDataReader r, int at, string path, long size, long mtime)
    {
        LoraExtra? x = null;
        if (!r.IsDBNull(at + 10))
        {
            try { x = JsonSerializer.Deserialize(r.GetString(at + 10), LoraIndexJson.Default.LoraExtra); }
            catch (JsonException) { return null; } // an unreadable row is simply read again
        }
        var e = new LoraEntry(r.GetString(at), path)
        {
            DeclaredAlias = r.GetString(at + 1),
            StoredNetworkType = r.GetString(at + 2),
            StoredRankText = r.GetString(at + 3),
            StoredMetadataHash = r.GetString(at + 4),
            A1111SdVersion = (BaseFamily)r.GetInt32(at + 5),
            Family = (BaseFamily)r.GetInt32(at + 6),
            PreviewPath = r.IsDBNull(at + 7) ? null : r.GetString(at + 7),
            DescriptionPath = r.IsDBNull(at + 8) ? null : r.GetString(at + 8),
            Error = r.IsDBNull(at + 9) ? null : r.GetString(at + 9),
            Size = size,
            ModifiedUtc = new DateTime(mtime, DateTimeKind.Utc),
        };
        if (x is not null)
        {
            e.Warnings = x.Warnings;
            if (x.User is { } u)
                e.User = new UserMetadata
                {
                    Path = u.Path, Description = u.Description, ActivationText = u.ActivationText, PreferredWeight = u.PreferredWeight,
                    NegativeText = u.NegativeText, SdVersion = u.SdVersion, Notes = u.Notes,
                };
            if (x.Civitai is { } cv)
                e.Civitai = new CivitaiInfo { Path = cv.Path, TrainedWords = cv.TrainedWords, BaseModel = cv.BaseModel, ModelName = cv.ModelName, VersionName = cv.VersionName };
        }
        e.MetadataLoader = () => ReadMetadata(path);
        return e;
    }

    internal sealed class LoraExtra
    {
        public List<string> Warnings { get; set; } = [];
        public UserFacts? User { get; set; }
        public CivitaiFacts? Civitai { get; set; }
    }

    internal sealed class UserFacts
    {
        public string? Path { get; set; }
        public string? Description { get; set; }
        public string? ActivationText { get; set; }
        public double? PreferredWeight { get; set; }
        public string? NegativeText { get; set; }
        public string? SdVersion { get; set; }
        public string? Notes { get; set; }
    }

    internal sealed class CivitaiFacts
    {
        public string? Path { get; set; }
        public List<string> TrainedWords { get; set; } = [];
        public string? BaseModel { get; set; }
        public string? ModelName { get; set; }
        public string? VersionName { get; set; }
    }
}

[JsonSerializable(typeof(LoraIndex.LoraExtra))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class LoraIndexJson : JsonSerializerContext;
