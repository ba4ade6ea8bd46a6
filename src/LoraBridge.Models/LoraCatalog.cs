namespace LoraBridge.Models;

/// <summary>Which name A1111 shows and writes into prompts (option <c>lora_preferred_name</c>).</summary>
public enum PreferredName
{
    /// <summary>"Alias from file": <c>ss_output_name</c> unless forbidden (the default).</summary>
    AliasFromFile,
    /// <summary>"Filename": always the file stem.</summary>
    Filename,
}

/// <summary>What happens when a prompt names a LoRA that is not on disk.</summary>
public enum LoraNotFoundBehavior
{
    /// <summary>Fail with the closest names (LoraBridge's default).</summary>
    Error,
    /// <summary>A1111's behaviour: skip it and add the note "Lora not found: …".</summary>
    SkipAndNote,
}

/// <summary>Where the catalog looks and how it resolves names.</summary>
public sealed class CatalogOptions
{
    /// <summary>An A1111 install; its <c>models/Lora</c>, <c>models/LyCORIS</c> and <c>models/Stable-diffusion</c> are scanned before the folders listed below.</summary>
    public string? WebUiDir { get; set; }

    /// <summary>LoRA folders, scanned in order (A1111: <c>--lora-dir</c>, then <c>--lyco-dir-backcompat</c>).</summary>
    public List<string> LoraDirs { get; set; } = [];

    /// <summary>Checkpoint folders (A1111: <c>models/Stable-diffusion</c>, <c>--ckpt-dir</c>).</summary>
    public List<string> CheckpointDirs { get; set; } = [];

    /// <summary>Folder for <c>hashes.json</c>; null keeps hashes in memory.</summary>
    public string? DataDir { get; set; }

    /// <summary>A1111's <c>lora_preferred_name</c>.</summary>
    public PreferredName PreferredName { get; set; } = PreferredName.AliasFromFile;

    /// <summary>Missing-LoRA behaviour.</summary>
    public LoraNotFoundBehavior NotFound { get; set; } = LoraNotFoundBehavior.Error;

    /// <summary>Keep a persistent index (<c>catalog.db</c> in <see cref="DataDir"/>) so later runs read only new or changed files.</summary>
    public bool UseIndex { get; set; } = true;

    /// <summary>LoRA folders in effect: the A1111 ones (when <see cref="WebUiDir"/> is set), then <see cref="LoraDirs"/>.</summary>
    public IReadOnlyList<string> EffectiveLoraDirs => Full(WebUiDir is null
        ? LoraDirs
        : [Path.Combine(WebUiDir, "models", "Lora"), Path.Combine(WebUiDir, "models", "LyCORIS"), .. LoraDirs]);

    /// <summary>Checkpoint folders in effect: the A1111 one (when <see cref="WebUiDir"/> is set), then <see cref="CheckpointDirs"/>.</summary>
    public IReadOnlyList<string> EffectiveCheckpointDirs => Full(WebUiDir is null
        ? CheckpointDirs
        : [Path.Combine(WebUiDir, "models", "Stable-diffusion"), .. CheckpointDirs]);

    // Absolute paths, so listings and errors do not depend on the working directory.
    private static string[] Full(IEnumerable<string> dirs) => dirs.Select(Path.GetFullPath).ToArray();
}

/// <summary>A LoRA name that resolved to nothing; the message lists the closest names.</summary>
public sealed class LoraNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LoraNotFoundException(string name, IReadOnlyList<string> suggestions, IReadOnlyList<string> folders)
        : base(BuildMessage(name, suggestions, folders))
    {
        LoraName = name;
        Suggestions = suggestions;
    }

    /// <summary>The name that was asked for.</summary>
    public string LoraName { get; }

    /// <summary>Closest known names, best first.</summary>
    public IReadOnlyList<string> Suggestions { get; }

    private static string BuildMessage(string name, IReadOnlyList<string> suggestions, IReadOnlyList<string> folders)
    {
        string where = folders.Count == 0 ? "no LoRA folder is configured" : "searched " + string.Join(", ", folders);
        return suggestions.Count == 0
            ? $"Lora not found: {name} ({where})"
            : $"Lora not found: {name}. Closest: {string.Join(", ", suggestions)} ({where})";
    }
}

/// <summary>
/// The LoRA-family files and checkpoints in A1111's folders, with names, aliases, metadata, sidecars, previews and
/// hashes resolved as A1111 v1.10.1 does. Pure file I/O; tensors are never read.
/// </summary>
public sealed class LoraCatalog
{
    /// <summary>Extensions scanned for LoRA-family files: A1111's three plus diffusers' <c>.bin</c>.</summary>
    public static readonly IReadOnlyCollection<string> LoraExtensions = new HashSet<string> { ".pt", ".ckpt", ".safetensors", ".bin" };

    internal static readonly string[] PreviewExtensions = ["png", "jpg", "jpeg", "webp", "gif"];

    private readonly object _gate = new();
    private Snapshot? _snapshot;
    private IReadOnlyList<CheckpointEntry>? _checkpoints;

    /// <summary>Creates a catalog; nothing is read until first use.</summary>
    public LoraCatalog(CatalogOptions options)
    {
        Options = options;
        if (options.DataDir is not null && options.UseIndex)
        {
            Index = LoraIndex.Open(Path.Combine(options.DataDir, "catalog.db"), out var problem);
            IndexProblem = problem ?? Index?.Notice;
        }
        Hashes = Index is not null ? HashCache.InIndex(Index)
            : new HashCache(options.DataDir is null ? null : Path.Combine(options.DataDir, "hashes.json"));
    }

    /// <summary>The persistent index, or null (no data folder, disabled, or unusable: see <see cref="IndexProblem"/>).</summary>
    public LoraIndex? Index { get; }

    /// <summary>Why the index is not used or was rebuilt, for the user; null when all is well.</summary>
    public string? IndexProblem { get; private set; }

    /// <summary>The options in effect.</summary>
    public CatalogOptions Options { get; }

    /// <summary>The hash cache shared by LoRAs and checkpoints.</summary>
    public HashCache Hashes { get; }

    /// <summary>How many times the LoRA folders were scanned.</summary>
    public int ScanCount { get; private set; }

    /// <summary>All LoRA-family files, in A1111's scan order (a later file with the same name replaces an earlier one in lookups, but both are listed).
    /// With an index, the folders are checked (stat) before listing, so the list is current.</summary>
    public IReadOnlyList<LoraEntry> Loras
    {
        get
        {
            Snapshot? snap;
            lock (_gate) snap = _snapshot;
            if (snap is { Verified: true }) return snap.All;
            Rescan(); // with an index: stat everything, read only what changed (no need to load the index first)
            return Current().All;
        }
    }

    /// <summary>Rereads the LoRA folders (A1111's <c>list_available_networks</c>); with an index, only new or changed files are read.</summary>
    public void Rescan()
    {
        var files = new List<string>();
        foreach (var dir in Options.EffectiveLoraDirs)
            files.AddRange(FileWalk.Files(dir, LoraExtensions));
        IReadOnlyList<LoraEntry> entries = Index is { } index ? SyncIndex(index, files) : files.Select(LoadEntry).ToList();
        Publish(BuildSnapshot(entries, verified: true));
    }

    private IReadOnlyList<LoraEntry> SyncIndex(LoraIndex index, List<string> files)
    {
        try
        {
            return index.Sync(files, LoadEntry);
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or InvalidDataException)
        {
            try
            {
                index.Rebuild(e.Message);
                IndexProblem = index.Notice;
                return index.Sync(files, LoadEntry);
            }
            catch (Exception e2) when (e2 is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException or InvalidDataException)
            {
                IndexProblem = $"{index.DatabasePath}: catalog index unusable ({e2.Message}); scanned without it";
                return files.Select(LoadEntry).ToList();
            }
        }
    }

    private void Publish(Snapshot snapshot)
    {
        lock (_gate)
        {
            _snapshot = snapshot;
            if (snapshot.Verified) ScanCount++;
        }
    }

    private static Snapshot BuildSnapshot(IReadOnlyList<LoraEntry> entries, bool verified)
    {

        // Same bookkeeping as list_available_networks: later files win, and an alias already taken by an earlier
        // name or alias becomes forbidden (lowercased), so only the file name reaches that file.
        var byName = new Dictionary<string, LoraEntry>(StringComparer.Ordinal);
        var byAlias = new Dictionary<string, LoraEntry>(StringComparer.Ordinal);
        var forbidden = new HashSet<string>(StringComparer.Ordinal) { "none", "Addams" };
        foreach (var e in entries)
        {
            byName[e.Name] = e;
            if (byAlias.ContainsKey(e.DeclaredAlias))
                forbidden.Add(e.DeclaredAlias.ToLowerInvariant());
            byAlias[e.Name] = e;
            byAlias[e.DeclaredAlias] = e;
        }
        return new Snapshot(entries, byName, byAlias, forbidden, verified);
    }

    /// <summary>The alias to show and to write into prompts: A1111's <c>NetworkOnDisk.get_alias</c>.</summary>
    public string AliasOf(LoraEntry entry) =>
        Options.PreferredName == PreferredName.Filename || Current().Forbidden.Contains(entry.DeclaredAlias.ToLowerInvariant())
            ? entry.Name
            : entry.DeclaredAlias;

    /// <summary>True when the entry's declared alias collides and is not usable.</summary>
    public bool IsAliasForbidden(LoraEntry entry) => Current().Forbidden.Contains(entry.DeclaredAlias.ToLowerInvariant());

    /// <summary>Looks a name up as A1111's <c>load_networks</c> does (alias table unless the name is a forbidden alias, then by file name), rescanning once on a miss.</summary>
    public LoraEntry? TryFind(string name)
    {
        var snap = Current();
        var hit = Lookup(snap, name);
        if (hit is not null && !snap.Verified && Index is { } index)
        {
            // Restored from the index without looking at the folders: check this one file (and its sidecars) only.
            LoraEntry? checkedHit;
            try { checkedHit = index.Verify(hit, LoadEntry); }
            catch (Microsoft.Data.Sqlite.SqliteException) { checkedHit = null; }
            if (checkedHit is null) hit = null; // gone or the index failed: fall back to a scan
            else if (!ReferenceEquals(checkedHit, hit))
            {
                var list = snap.All.Select(e => ReferenceEquals(e, hit) ? checkedHit : e).ToList();
                var rebuilt = BuildSnapshot(list, verified: false);
                Publish(rebuilt);
                hit = Lookup(rebuilt, name);
            }
        }
        if (hit is not null) return hit;
        Rescan();
        return Lookup(Current(), name);
    }

    /// <summary>Like <see cref="TryFind"/> but fails with the closest names.</summary>
    /// <exception cref="LoraNotFoundException">No file has that name or alias.</exception>
    public LoraEntry Find(string name) => TryFind(name) ?? throw NotFound(name);

    /// <summary>
    /// A LoRA name a prompt mentions, resolved as generation does (the one home of that rule: generation, batch
    /// checks and <c>--dry-run</c> call it): the entry; null when it is missing and <see cref="CatalogOptions.NotFound"/>
    /// is <see cref="LoraNotFoundBehavior.SkipAndNote"/> (A1111 skips it; see <see cref="SkippedNote"/>).
    /// </summary>
    /// <exception cref="LoraNotFoundException">Missing, and the behaviour is <see cref="LoraNotFoundBehavior.Error"/>.</exception>
    public LoraEntry? Resolve(string name) =>
        TryFind(name) ?? (Options.NotFound == LoraNotFoundBehavior.SkipAndNote ? null : throw NotFound(name));

    /// <summary>The error for a missing name: the closest known names and the folders searched.</summary>
    public LoraNotFoundException NotFound(string name) => new(name, Suggest(name), Options.EffectiveLoraDirs);

    /// <summary>The warning for a name <see cref="Resolve"/> skipped (A1111's "Lora not found: name" note).</summary>
    public static string SkippedNote(string name) =>
        $"Lora not found: {name} (skipped, as A1111 does with LoraBridge:LoraNotFound=SkipAndNote)";

    /// <summary>Up to <paramref name="max"/> known names or usable aliases closest to <paramref name="name"/>: prefix and substring matches first, then by edit distance.</summary>
    public IReadOnlyList<string> Suggest(string name, int max = 5)
    {
        var snap = Current();
        var candidates = snap.All.SelectMany(e => new[] { e.Name, AliasOf(e) }).Distinct(StringComparer.Ordinal);
        string q = name.ToLowerInvariant();
        int limit = Math.Max(2, q.Length / 3);
        return candidates
            .Select(c =>
            {
                string lc = c.ToLowerInvariant();
                int rank = lc.StartsWith(q, StringComparison.Ordinal) || q.StartsWith(lc, StringComparison.Ordinal) ? 0
                    : lc.Contains(q, StringComparison.Ordinal) || q.Contains(lc, StringComparison.Ordinal) ? 1 : 2;
                return (Name: c, Rank: rank, Distance: EditDistance.Levenshtein(q, lc));
            })
            .Where(c => c.Rank < 2 || c.Distance <= limit)
            .OrderBy(c => c.Rank).ThenBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(max)
            .Select(c => c.Name)
            .ToList();
    }

    /// <summary>
    /// A1111's LoRA hash, computed on first request and cached: <c>sshs_model_hash</c> metadata when present, else the
    /// addnet hash (safetensors) or the full-file SHA-256 (other formats).
    /// </summary>
    public string HashOf(LoraEntry entry) =>
        entry.MetadataHash ?? Hashes.GetOrCompute(entry.FilePath, entry.IsSafetensors ? HashKind.Addnet : HashKind.FullFile);

    /// <summary><see cref="HashOf"/> when it needs no computation (metadata or cache, for the file's current size and mtime as
    /// the catalog saw them), else null. Touches no file.</summary>
    public string? CachedHashOf(LoraEntry entry) =>
        entry.MetadataHash ?? Hashes.TryGet(entry.FilePath, entry.IsSafetensors ? HashKind.Addnet : HashKind.FullFile, entry.Size, entry.ModifiedUtc.Ticks);

    /// <summary>Computes and caches the hash of every LoRA that has none cached; returns how many were computed.</summary>
    public int HashAll(Action<LoraEntry>? progress = null)
    {
        int n = 0;
        foreach (var e in Loras)
        {
            if (e.Error is not null || CachedHashOf(e) is not null) continue;
            try { HashOf(e); n++; }
            catch (IOException) { }
            progress?.Invoke(e);
        }
        return n;
    }

    /// <summary>The first 12 characters of <see cref="HashOf"/>, as A1111 writes into <c>Lora hashes</c>.</summary>
    public string ShortHashOf(LoraEntry entry)
    {
        var h = HashOf(entry);
        return h.Length > 12 ? h[..12] : h;
    }

    /// <summary>
    /// The key a LoRA gets in <c>Lora hashes</c>: the name as mentioned in the prompt with ':' and ',' removed
    /// (A1111's <c>mentioned_name.translate(remove_symbols)</c>).
    /// </summary>
    public static string MentionedName(string requested) =>
        requested.Replace(":", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);

    /// <summary>
    /// The infotext value of <c>Lora hashes</c> as A1111's <c>extra_networks_lora.activate</c> writes it from the
    /// networks a job used, in use order: "mentioned: shorthash, ...", one entry per <see cref="MentionedName"/> in
    /// first-use order (a later network with the same key replaces the hash, as A1111's dict does); networks without
    /// a hash or name are left out. Null when there is nothing to write.
    /// </summary>
    public static string? LoraHashes(IEnumerable<(string Mentioned, string? ShortHash)> used)
    {
        var order = new List<string>();
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (mentioned, shortHash) in used)
        {
            if (string.IsNullOrEmpty(shortHash) || mentioned.Length == 0) continue;
            if (!hashes.ContainsKey(mentioned)) order.Add(mentioned);
            hashes[mentioned] = shortHash;
        }
        return order.Count == 0 ? null : string.Join(", ", order.Select(k => $"{k}: {hashes[k]}"));
    }

    /// <summary>A warning when the LoRA was made for another family than the checkpoint; null when they match or either is unknown.</summary>
    public static string? FamilyMismatch(LoraEntry entry, BaseFamily checkpointFamily) =>
        entry.Family == BaseFamily.Unknown || checkpointFamily == BaseFamily.Unknown || entry.Family == checkpointFamily
            ? null
            : $"LoRA '{entry.Name}' was made for {entry.Family} but the checkpoint is {checkpointFamily}; it applies only where its tensors fit, as in A1111 ({entry.FilePath})";

    /// <summary>Checkpoints under the checkpoint folders, in A1111's order (read once; see <see cref="RescanCheckpoints"/>).</summary>
    public IReadOnlyList<CheckpointEntry> Checkpoints
    {
        get
        {
            lock (_gate)
            {
                if (_checkpoints is null) RescanCheckpointsLocked();
                return _checkpoints!;
            }
        }
    }

    /// <summary>Rereads the checkpoint folders.</summary>
    public void RescanCheckpoints()
    {
        lock (_gate) RescanCheckpointsLocked();
    }

    private void RescanCheckpointsLocked()
    {
        var list = new List<CheckpointEntry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in Options.EffectiveCheckpointDirs)
        {
            foreach (var file in FileWalk.Files(dir, CheckpointEntry.Extensions))
            {
                string lower = file.ToLowerInvariant();
                if (lower.EndsWith(".vae.ckpt", StringComparison.Ordinal) || lower.EndsWith(".vae.safetensors", StringComparison.Ordinal))
                    continue;
                if (seen.Add(Path.GetFullPath(file)))
                    list.Add(CheckpointEntry.Load(file, dir));
            }
        }
        _checkpoints = list;
    }

    /// <summary>
    /// Finds a checkpoint as A1111's <c>get_closet_checkpoint_match</c> does: an exact id (name, title, stem, old hash,
    /// short or full SHA-256 when known), else the shortest title containing the text, else the same without a trailing
    /// "[hash]". An existing file path is also accepted.
    /// </summary>
    public CheckpointEntry? FindCheckpoint(string search)
    {
        if (string.IsNullOrEmpty(search)) return null;
        var all = Checkpoints;
        if (File.Exists(search))
        {
            string full = Path.GetFullPath(search);
            return all.FirstOrDefault(c => Path.GetFullPath(c.FilePath) == full) ?? CheckpointEntry.Load(search, Path.GetDirectoryName(full)!);
        }
        // Later registrations overwrite earlier ones in A1111's checkpoint_aliases dict.
        CheckpointEntry? exact = null;
        foreach (var c in all)
            if (c.Ids(Hashes).Contains(search)) exact = c;
        if (exact is not null) return exact;
        var hit = all.Where(c => c.Title(Hashes).Contains(search, StringComparison.Ordinal)).OrderBy(c => c.Title(Hashes).Length).FirstOrDefault();
        if (hit is not null) return hit;
        string stripped = System.Text.RegularExpressions.Regex.Replace(search, @"\s*\[[^]]*]\s*$", "");
        return all.Where(c => c.Title(Hashes).Contains(stripped, StringComparison.Ordinal)).OrderBy(c => c.Title(Hashes).Length).FirstOrDefault();
    }

    private Snapshot Current()
    {
        lock (_gate)
            if (_snapshot is not null) return _snapshot;
        if (Index is { } index)
        {
            // Name lookups start from the index alone; files are looked at only when a name is used (TryFind) or listed.
            try
            {
                if (index.HasRows())
                {
                    Publish(BuildSnapshot(index.LoadAll(), verified: false));
                    lock (_gate) return _snapshot!;
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException) { } // the scan below rebuilds it
        }
        Rescan();
        lock (_gate) return _snapshot!;
    }

    private static LoraEntry? Lookup(Snapshot s, string name) =>
        s.Forbidden.Contains(name.ToLowerInvariant())
            ? s.ByName.GetValueOrDefault(name)
            : s.ByAlias.GetValueOrDefault(name);

    internal static LoraEntry LoadEntry(string file)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        var entry = new LoraEntry(name, file);
        var warnings = new List<string>();
        try
        {
            var info = new FileInfo(file);
            entry.Size = info.Length;
            entry.ModifiedUtc = info.LastWriteTimeUtc;
        }
        catch (IOException e)
        {
            entry.Error = $"{file}: {e.Message}";
        }

        if (entry.IsSafetensors && entry.Error is null)
        {
            try
            {
                var header = SafetensorsHeader.Read(file);
                entry.Header = header;
                entry.Metadata = header.Metadata;
                entry.Analysis = NetworkAnalysis.Analyze(header);
                var unknown = entry.Analysis.Groups.Where(g => g.ModuleType is null).Select(g => g.Key).ToList();
                if (unknown.Count > 0)
                    warnings.Add($"{file}: no network type accepts the keys of {string.Join(", ", unknown.Take(3))}{(unknown.Count > 3 ? $" and {unknown.Count - 3} more" : "")}; A1111 refuses to load this file");
            }
            catch (Exception e) when (e is ModelFileException or IOException or UnauthorizedAccessException)
            {
                entry.Error = e is ModelFileException ? e.Message : $"{file}: {e.Message}";
            }
        }

        entry.DeclaredAlias = entry.Metadata.GetValueOrDefault("ss_output_name", name);

        string stem = Path.Combine(Path.GetDirectoryName(file) ?? "", name);
        string sidecar = stem + ".json";
        if (File.Exists(sidecar))
        {
            entry.User = UserMetadata.Read(sidecar, out var err);
            if (err is not null) warnings.Add(err);
        }
        string civitai = stem + ".civitai.info";
        if (File.Exists(civitai))
        {
            entry.Civitai = CivitaiInfo.Read(civitai, out var err);
            if (err is not null) warnings.Add(err);
        }
        entry.PreviewPath = PreviewExtensions
            .SelectMany(ext => new[] { $"{stem}.{ext}", $"{stem}.preview.{ext}" })
            .FirstOrDefault(File.Exists);
        entry.DescriptionPath = new[] { stem + ".txt", stem + ".description.txt" }.FirstOrDefault(File.Exists);

        entry.A1111SdVersion = FamilyRules.A1111DetectVersion(entry.Metadata);
        entry.Family = FamilyRules.ForLora(entry.User.SdVersion, entry.Metadata, entry.Analysis?.KeyFamily ?? BaseFamily.Unknown);
        // Civitai's base model fills in where the file itself says nothing (metadata-free files).
        if (entry.Family == BaseFamily.Unknown) entry.Family = entry.Civitai.Family;
        entry.Warnings = warnings;
        return entry;
    }

    private sealed record Snapshot(
        IReadOnlyList<LoraEntry> All,
        Dictionary<string, LoraEntry> ByName,
        Dictionary<string, LoraEntry> ByAlias,
        HashSet<string> Forbidden,
        bool Verified);
}

/// <summary>Base-family rules shared by LoRAs and checkpoints.</summary>
public static class FamilyRules
{
    /// <summary>A1111's <c>NetworkOnDisk.detect_version</c>.</summary>
    public static BaseFamily A1111DetectVersion(IReadOnlyDictionary<string, string> metadata)
    {
        if (metadata.GetValueOrDefault("ss_base_model_version", "").StartsWith("sdxl_", StringComparison.Ordinal)) return BaseFamily.SDXL;
        if (metadata.GetValueOrDefault("ss_v2", "") == "True") return BaseFamily.SD2;
        return metadata.Count > 0 ? BaseFamily.SD1 : BaseFamily.Unknown;
    }

    /// <summary>Family from explicit metadata only, or Unknown.</summary>
    public static BaseFamily FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        string v = metadata.GetValueOrDefault("ss_base_model_version", "");
        if (v.StartsWith("sdxl_", StringComparison.Ordinal)) return BaseFamily.SDXL;
        if (v.StartsWith("sd_v2", StringComparison.Ordinal) || metadata.GetValueOrDefault("ss_v2", "") == "True") return BaseFamily.SD2;
        if (v.StartsWith("sd_v1", StringComparison.Ordinal)) return BaseFamily.SD1;
        string arch = metadata.GetValueOrDefault("modelspec.architecture", "");
        if (arch.StartsWith("stable-diffusion-xl-v1", StringComparison.Ordinal)) return BaseFamily.SDXL;
        if (arch.StartsWith("stable-diffusion-v2", StringComparison.Ordinal)) return BaseFamily.SD2;
        if (arch.StartsWith("stable-diffusion-v1", StringComparison.Ordinal)) return BaseFamily.SD1;
        // kohya writes ss_v2 = "False" only for SD1/SD2-era trainings; newer families name themselves in ss_base_model_version.
        if (v.Length == 0 && metadata.GetValueOrDefault("ss_v2", "") == "False") return BaseFamily.SD1;
        return BaseFamily.Unknown;
    }

    /// <summary>Sidecar <c>sd version</c> when it names a family (A1111's UI honours it), else metadata, else key shapes.</summary>
    public static BaseFamily ForLora(string? sidecarVersion, IReadOnlyDictionary<string, string> metadata, BaseFamily fromKeys)
    {
        if (sidecarVersion is "SD1" or "SD2" or "SDXL") return Enum.Parse<BaseFamily>(sidecarVersion);
        var m = FromMetadata(metadata);
        return m != BaseFamily.Unknown ? m : fromKeys;
    }
}
