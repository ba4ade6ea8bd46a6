namespace LoraBridge.Models;

/// <summary>A checkpoint file with the names and hashes of A1111's <c>sd_models.CheckpointInfo</c>.</summary>
public sealed class CheckpointEntry
{
    /// <summary>Checkpoint extensions A1111 lists.</summary>
    public static readonly IReadOnlyCollection<string> Extensions = new HashSet<string> { ".ckpt", ".safetensors" };

    private string? _oldHash;

    private CheckpointEntry(string path, string name)
    {
        FilePath = path;
        Name = name;
    }

    /// <summary>Full path.</summary>
    public string FilePath { get; }

    /// <summary>Path relative to its checkpoint folder, extension included (<c>sub/model.safetensors</c>): A1111's <c>name</c>.</summary>
    public string Name { get; }

    /// <summary>File stem: A1111's <c>name_for_extra</c>.</summary>
    public string NameForExtra => Path.GetFileNameWithoutExtension(FilePath);

    /// <summary><see cref="Name"/> without extension, folder separators replaced by '_': A1111's <c>model_name</c>, written as infotext <c>Model</c>.</summary>
    public string ModelName => Path.GetFileNameWithoutExtension(Name.Replace('/', '_').Replace('\\', '_'));

    /// <summary>True for safetensors.</summary>
    public bool IsSafetensors => FilePath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>Safetensors metadata (empty for .ckpt or on error).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; } = new Dictionary<string, string>();

    /// <summary>Family from metadata or the text-encoder keys; Unknown for pickled checkpoints.</summary>
    public BaseFamily Family { get; private set; }

    /// <summary>Why the header could not be read, or null.</summary>
    public string? Error { get; private set; }

    /// <summary>File size in bytes.</summary>
    public long Size { get; private set; }

    /// <summary>A1111's old 8-character <c>model_hash</c> (cheap: reads 64 KiB).</summary>
    public string OldHash => _oldHash ??= ModelHashes.OldModelHash(FilePath);

    /// <summary>Full-file SHA-256, computed on first request and cached.</summary>
    public string Sha256(HashCache cache) => cache.GetOrCompute(FilePath, HashKind.FullFile);

    /// <summary>First 10 characters of the SHA-256: A1111's <c>shorthash</c>, written as infotext <c>Model hash</c>.</summary>
    public string ShortHash(HashCache cache) => Sha256(cache)[..10];

    /// <summary>A1111's title: <c>name [shorthash]</c> once the SHA-256 is known (cached), else the name.</summary>
    public string Title(HashCache cache)
    {
        var sha = cache.TryGet(FilePath, HashKind.FullFile);
        return sha is null ? Name : $"{Name} [{sha[..10]}]";
    }

    /// <summary>Every id A1111 registers for the checkpoint in <c>checkpoint_aliases</c>.</summary>
    public IReadOnlyList<string> Ids(HashCache cache)
    {
        var ids = new List<string> { OldHash, ModelName, Title(cache), Name, NameForExtra, $"{Name} [{OldHash}]" };
        var sha = cache.TryGet(FilePath, HashKind.FullFile);
        if (sha is not null)
            ids.AddRange([sha[..10], sha, $"{Name} [{sha[..10]}]", $"{NameForExtra} [{sha[..10]}]"]);
        return ids;
    }

    /// <summary>Reads what the file's header tells without loading tensors.</summary>
    public static CheckpointEntry Load(string file, string folder)
    {
        string full = Path.GetFullPath(file);
        string root = Path.GetFullPath(folder);
        string name = full.StartsWith(root, StringComparison.Ordinal) ? full[root.Length..].TrimStart('/', '\\') : Path.GetFileName(full);
        var entry = new CheckpointEntry(file, name) { Size = new FileInfo(file).Length };
        if (entry.IsSafetensors)
        {
            try
            {
                var header = SafetensorsHeader.Read(file);
                entry.Metadata = header.Metadata;
                entry.Family = FamilyOf(header);
            }
            catch (Exception e) when (e is ModelFileException or IOException or UnauthorizedAccessException)
            {
                entry.Error = e is ModelFileException ? e.Message : $"{file}: {e.Message}";
            }
        }
        return entry;
    }

    /// <summary>Family of a checkpoint from metadata, else from which text encoder its keys hold.</summary>
    public static BaseFamily FamilyOf(SafetensorsHeader header)
    {
        var m = FamilyRules.FromMetadata(header.Metadata);
        if (m != BaseFamily.Unknown) return m;
        bool Any(string prefix) => header.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (Any("conditioner.embedders.1.")) return BaseFamily.SDXL;
        if (Any("cond_stage_model.model.transformer.")) return BaseFamily.SD2;
        if (Any("cond_stage_model.transformer.")) return BaseFamily.SD1;
        return BaseFamily.Unknown;
    }
}
