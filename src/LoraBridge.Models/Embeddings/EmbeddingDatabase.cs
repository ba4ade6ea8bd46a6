using System.Text.Json;
using System.Text.Json.Nodes;
using LoraBridge.Tokenizers;

namespace LoraBridge.Models;

/// <summary>One embedding the database made of a file (loaded or skipped).</summary>
/// <param name="Name">Name prompts use: the file stem, or the name stored in an image.</param>
/// <param name="File">The file.</param>
/// <param name="Info">What reading it gave.</param>
/// <param name="Hash">SHA-256 of the file (A1111's <c>hashes.sha256</c>).</param>
/// <param name="Ids">The name's token ids (what prompts are matched against).</param>
public sealed record EmbeddingEntry(string Name, EmbeddingFile File, EmbeddingFileInfo Info, string Hash, IReadOnlyList<int> Ids)
{
    /// <summary>A1111's short hash: the first 12 hex digits.</summary>
    public string ShortHash => Hash.Length >= 12 ? Hash[..12] : Hash;

    /// <summary>A key that changes when another file or other contents take the name (Python keeps vectors under it).</summary>
    public string Key => Name + "\u0001" + File.Path + "\u0001" + Hash;
}

/// <summary>A file the database could not use.</summary>
/// <param name="File">The file.</param>
/// <param name="Kind"><c>data_issue</c> (pickle refused or unreadable) or <c>error</c>.</param>
/// <param name="Exception">A1111's exception type.</param>
/// <param name="Message">The problem, naming the file.</param>
public sealed record EmbeddingLoadError(EmbeddingFile File, string Kind, string Exception, string Message);

/// <summary>
/// A1111 v1.10.1's <c>EmbeddingDatabase</c> over one or more folders: every file read in walk order, loaded when its
/// width fits the text encoder (<see cref="ExpectedShape"/>, -1 accepts all) and skipped otherwise, a name seen again
/// replacing the earlier one, names matched in prompts by token ids (<see cref="Lookup"/>), loaded names listed sorted
/// case-insensitively. Unreadable files are listed with their error and never stop the scan.
/// </summary>
public sealed class EmbeddingDatabase
{
    private EmbeddingDatabase(int expectedShape, IReadOnlyList<EmbeddingEntry> loaded, IReadOnlyList<EmbeddingEntry> skipped,
        IReadOnlyList<EmbeddingLoadError> errors, EmbeddingLookup lookup, IReadOnlyList<string> folders)
    {
        ExpectedShape = expectedShape;
        Loaded = loaded;
        Skipped = skipped;
        Errors = errors;
        Lookup = lookup;
        Folders = folders;
    }

    /// <summary>Width of the text encoder's token embeddings, or -1 when unknown (then nothing is skipped).</summary>
    public int ExpectedShape { get; }

    /// <summary>Usable embeddings, sorted by lowercase name (stable), one per name.</summary>
    public IReadOnlyList<EmbeddingEntry> Loaded { get; }

    /// <summary>Embeddings whose width does not fit, one per name (the last one skipped), in first-skip order.</summary>
    public IReadOnlyList<EmbeddingEntry> Skipped { get; }

    /// <summary>Files that could not be read, in walk order.</summary>
    public IReadOnlyList<EmbeddingLoadError> Errors { get; }

    /// <summary>Token-id lookup of the loaded names, for the prompt chunker.</summary>
    public EmbeddingLookup Lookup { get; }

    /// <summary>The folders scanned, in order.</summary>
    public IReadOnlyList<string> Folders { get; }

    /// <summary>An empty database (no folders).</summary>
    public static EmbeddingDatabase Empty { get; } = new(-1, [], [], [], new EmbeddingLookup(), []);

    /// <summary>The loaded embedding behind a chunk fix.</summary>
    public static EmbeddingEntry EntryOf(ChunkFix fix) =>
        fix.Embedding.Tag as EmbeddingEntry ?? throw new InvalidOperationException($"embedding {fix.Embedding.Name} has no database entry");

    /// <summary>Scans <paramref name="folders"/> in order and registers what A1111 would.</summary>
    /// <param name="folders">Embedding folders (missing ones are passed over).</param>
    /// <param name="expectedShape">Text-encoder width; -1 to accept every width.</param>
    /// <param name="tokenizer">Tokenizer of the text encoder (names are matched as token ids).</param>
    /// <param name="reader">Reads pickles and images (Python); null: such files are reported as errors.</param>
    /// <param name="hashes">Hash cache; null hashes without caching.</param>
    /// <param name="infoCache">Cache of file descriptions by size and time; null: none.</param>
    /// <param name="ct">Cancellation.</param>
    public static async Task<EmbeddingDatabase> LoadAsync(IReadOnlyList<string> folders, int expectedShape, ClipTokenizer tokenizer,
        IEmbeddingFileReader? reader, HashCache? hashes = null, EmbeddingInfoCache? infoCache = null, CancellationToken ct = default)
    {
        var files = folders.SelectMany(EmbeddingFiles.Walk).ToList();
        var infos = new EmbeddingFileInfo?[files.Count];
        var toRead = new List<int>();
        for (int i = 0; i < files.Count; i++)
        {
            if (files[i].Format == EmbeddingFileFormat.Safetensors) infos[i] = EmbeddingFiles.DescribeSafetensors(files[i].Path);
            else if (infoCache?.TryGet(files[i].Path) is { } cached) infos[i] = cached;
            else toRead.Add(i);
        }
        if (toRead.Count > 0)
        {
            if (reader is null)
            {
                foreach (int i in toRead)
                    infos[i] = new EmbeddingFileInfo { Status = EmbeddingReadStatus.Error, Exception = "NotSupported", Message = $"{files[i].Path}: reading pickles and images needs Python" };
            }
            else
            {
                var read = await reader.DescribeAsync(toRead.Select(i => files[i].Path).ToList(), ct).ConfigureAwait(false);
                for (int k = 0; k < toRead.Count; k++)
                {
                    infos[toRead[k]] = read[k];
                    infoCache?.Put(files[toRead[k]].Path, read[k]);
                }
                infoCache?.Save();
            }
        }
        return Build(files, infos!, expectedShape, tokenizer, hashes ?? new HashCache(null), folders);
    }

    /// <summary>Registers described files in walk order (A1111's <c>load_from_file</c> and <c>register_embedding</c>).</summary>
    public static EmbeddingDatabase Build(IReadOnlyList<EmbeddingFile> files, IReadOnlyList<EmbeddingFileInfo> infos, int expectedShape,
        ClipTokenizer tokenizer, HashCache hashes, IReadOnlyList<string>? folders = null)
    {
        var lookup = new EmbeddingLookup();
        var words = new Dictionary<string, EmbeddingEntry>(StringComparer.Ordinal);
        var wordOrder = new List<string>();
        var skipped = new Dictionary<string, EmbeddingEntry>(StringComparer.Ordinal);
        var skippedOrder = new List<string>();
        var errors = new List<EmbeddingLoadError>();
        for (int i = 0; i < files.Count; i++)
        {
            var file = files[i];
            var info = infos[i];
            switch (info.Status)
            {
                case EmbeddingReadStatus.Ignored:
                    continue;
                case EmbeddingReadStatus.DataIssue:
                    errors.Add(new EmbeddingLoadError(file, "data_issue", info.Exception ?? "UnpicklingError", info.Message ?? file.Path));
                    continue;
                case EmbeddingReadStatus.Error:
                    errors.Add(new EmbeddingLoadError(file, "error", info.Exception ?? "Exception", info.Message ?? file.Path));
                    continue;
            }
            string name = info.Name ?? file.Stem;
            string hash;
            try
            {
                hash = hashes.GetOrCompute(file.Path, HashKind.FullFile, deferSave: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add(new EmbeddingLoadError(file, "error", "OSError", $"{file.Path}: {e.Message}"));
                continue;
            }
            var ids = tokenizer.Encode(name);
            var entry = new EmbeddingEntry(name, file, info, hash, ids);
            if (expectedShape != -1 && expectedShape != info.Shape)
            {
                if (!skipped.ContainsKey(name)) skippedOrder.Add(name);
                skipped[name] = entry;
                continue;
            }
            if (ids.Length == 0)
            {
                errors.Add(new EmbeddingLoadError(file, "error", "IndexError", $"{file.Path}: the name \"{name}\" has no tokens"));
                continue;
            }
            lookup.Register(ids, new TokenEmbedding(name, info.Vectors, entry));
            if (!words.ContainsKey(name)) wordOrder.Add(name);
            words[name] = entry;
        }
        hashes.SaveIfChanged();
        // A1111 re-sorts by name.lower() (a stable sort; equal lowercase names keep registration order).
        var loaded = wordOrder.Select(n => words[n]).Select((e, k) => (e, k))
            .OrderBy(x => x.e.Name.ToLowerInvariant(), StringComparer.Ordinal).ThenBy(x => x.k).Select(x => x.e).ToList();
        return new EmbeddingDatabase(expectedShape, loaded, skippedOrder.Select(n => skipped[n]).ToList(), errors, lookup, folders ?? []);
    }

    /// <summary>The database in the shape of the conformance <c>embeddings_db.json</c>.</summary>
    public JsonObject ToJson()
    {
        JsonObject Entry(EmbeddingEntry e) => new()
        {
            ["name"] = e.Name,
            ["file"] = e.File.RelativePath,
            ["vectors"] = e.Info.Vectors,
            ["shape"] = e.Info.Shape,
            ["vec_shape"] = e.Info.VecShape?.DeepClone(),
            ["step"] = e.Info.Step?.DeepClone(),
            ["sd_checkpoint"] = e.Info.SdCheckpoint?.DeepClone(),
            ["sd_checkpoint_name"] = e.Info.SdCheckpointName?.DeepClone(),
            ["hash"] = e.Hash,
            ["shorthash"] = e.ShortHash,
            ["ids"] = new JsonArray(e.Ids.Select(i => (JsonNode)i).ToArray()),
        };
        return new JsonObject
        {
            ["expected_shape"] = ExpectedShape,
            ["loaded"] = new JsonArray(Loaded.Select(e => (JsonNode)Entry(e)).ToArray()),
            ["skipped"] = new JsonArray(Skipped.Select(e => (JsonNode)Entry(e)).ToArray()),
            ["errors_by_file"] = new JsonArray(Errors.Select(e => (JsonNode)new JsonObject
            {
                ["file"] = e.File.RelativePath,
                ["kind"] = e.Kind,
                ["exception"] = e.Exception,
                ["message"] = e.Message,
            }).ToArray()),
            ["ids_lookup"] = new JsonArray(Lookup.Entries.Select(x => (JsonNode)new JsonObject
            {
                ["first_id"] = x.FirstId,
                ["entries"] = new JsonArray(x.Entries.Select(en => (JsonNode)new JsonArray(
                    new JsonArray(en.Ids.Select(i => (JsonNode)i).ToArray()), en.Embedding.Name)).ToArray()),
            }).ToArray()),
        };
    }
}

/// <summary>
/// Descriptions of pickle and image embeddings (which need Python to read) kept by path, size and modification time,
/// so listing an unchanged folder does not start Python. A damaged cache file only costs re-reading.
/// </summary>
public sealed class EmbeddingInfoCache
{
    private readonly string? _file;
    private readonly JsonObject _entries;
    private bool _dirty;

    /// <summary>Opens the cache at <paramref name="file"/> (null: in memory).</summary>
    public EmbeddingInfoCache(string? file)
    {
        _file = file;
        _entries = Load(file);
    }

    private static JsonObject Load(string? file)
    {
        if (file is null || !File.Exists(file)) return new JsonObject();
        try
        {
            return JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? new JsonObject();
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return new JsonObject();
        }
    }

    private static string Stamp(string path)
    {
        var fi = new FileInfo(path);
        return $"{fi.Length}:{fi.LastWriteTimeUtc.Ticks}";
    }

    /// <summary>The cached description when the file is unchanged, else null.</summary>
    public EmbeddingFileInfo? TryGet(string path)
    {
        var full = Path.GetFullPath(path);
        if (_entries[full] is not JsonObject o || o["stamp"]?.GetValue<string>() != Stamp(full) || o["info"] is not JsonObject info) return null;
        return EmbeddingFileInfo.FromJson(info);
    }

    /// <summary>Stores a description for the file as it is now.</summary>
    public void Put(string path, EmbeddingFileInfo info)
    {
        var full = Path.GetFullPath(path);
        _entries[full] = new JsonObject { ["stamp"] = Stamp(full), ["info"] = info.ToJson() };
        _dirty = true;
    }

    /// <summary>Writes the cache atomically when something changed.</summary>
    public void Save()
    {
        if (_file is null || !_dirty) return;
        AtomicFile.Replace(_file, System.Text.Encoding.UTF8.GetBytes(_entries.ToJsonString()));
        _dirty = false;
    }
}
