using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraBridge.Models;

/// <summary>How an embedding file is read.</summary>
public enum EmbeddingFileFormat
{
    /// <summary><c>.pt</c>/<c>.bin</c>: a PyTorch pickle, read in Python by the restricted unpickler.</summary>
    Pickle,
    /// <summary><c>.safetensors</c>: described from its header here, vectors read in Python.</summary>
    Safetensors,
    /// <summary><c>.png</c>/<c>.webp</c>/<c>.jxl</c>/<c>.avif</c>: data in a text chunk or in the pixels, read in Python.</summary>
    Image,
}

/// <summary>One file of an embeddings folder that A1111 would try to read.</summary>
/// <param name="Path">Full path.</param>
/// <param name="Root">The embeddings folder it was found under.</param>
/// <param name="RelativePath">Path relative to <paramref name="Root"/>, '/'-separated.</param>
/// <param name="Stem">File name up to the last extension, as Python's <c>os.path.splitext</c> cuts it.</param>
/// <param name="Format">How it is read.</param>
public sealed record EmbeddingFile(string Path, string Root, string RelativePath, string Stem, EmbeddingFileFormat Format);

/// <summary>What reading one file gave.</summary>
public enum EmbeddingReadStatus
{
    /// <summary>An embedding.</summary>
    Ok,
    /// <summary>Not an embedding, silently (a preview image, an image without data).</summary>
    Ignored,
    /// <summary>A pickle the safe unpickler refused or could not read: A1111's "data issue".</summary>
    DataIssue,
    /// <summary>Reading failed: A1111's "Error loading embedding".</summary>
    Error,
}

/// <summary>
/// What the database needs to know about one file (A1111's <c>create_embedding_from_data</c> without the vectors).
/// </summary>
public sealed record EmbeddingFileInfo
{
    /// <summary>Outcome.</summary>
    public required EmbeddingReadStatus Status { get; init; }
    /// <summary>Name stored in the data (images); null: the file stem.</summary>
    public string? Name { get; init; }
    /// <summary>Placeholder tokens (rows of the tensor; of <c>clip_g</c> for SDXL files).</summary>
    public int Vectors { get; init; }
    /// <summary>Width for the fit test (<c>clip_g</c> + <c>clip_l</c> widths for SDXL files).</summary>
    public int Shape { get; init; }
    /// <summary>Shape of the vector tensor, or <c>{key: shape}</c> for SDXL files.</summary>
    public JsonNode? VecShape { get; init; }
    /// <summary>Training step stored in the file, if any.</summary>
    public JsonNode? Step { get; init; }
    /// <summary>Checkpoint hash stored in the file, if any.</summary>
    public JsonNode? SdCheckpoint { get; init; }
    /// <summary>Checkpoint name stored in the file, if any.</summary>
    public JsonNode? SdCheckpointName { get; init; }
    /// <summary>A1111's exception type for <see cref="EmbeddingReadStatus.Error"/>/<see cref="EmbeddingReadStatus.DataIssue"/>.</summary>
    public string? Exception { get; init; }
    /// <summary>The problem, naming the file.</summary>
    public string? Message { get; init; }

    /// <summary>
    /// Shape of the rows one text encoder gets (<c>clip_l</c> of an SDXL file for SD 1.x, the tensor otherwise), or null
    /// when there is none.
    /// </summary>
    public IReadOnlyList<long>? VectorShapeFor(string key = "clip_l")
    {
        JsonNode? n = VecShape is JsonObject o ? o[key] : VecShape;
        return n is JsonArray a ? a.Select(x => x!.GetValue<long>()).ToList() : null;
    }

    /// <summary>
    /// Whether A1111's <c>EmbeddingsWithFixes</c> can write these vectors into a text encoder of width
    /// <paramref name="width"/> (negative: unknown, any width): a 2-D tensor of that width (anything else makes its
    /// <c>torch.cat</c> fail).
    /// </summary>
    public bool FitsEncoder(int width, string key = "clip_l") =>
        VectorShapeFor(key) is { Count: 2 } s && (width < 0 || s[1] == width);

    /// <summary>Rows of the vectors for <paramref name="key"/> (first dimension), the count A1111 writes at most.</summary>
    public int RowsFor(string key = "clip_l") => VectorShapeFor(key) is { Count: > 0 } s ? (int)s[0] : 0;

    /// <summary>Reads one object of <c>lorabridge.embeddings.describe</c>.</summary>
    public static EmbeddingFileInfo FromJson(JsonObject o)
    {
        string status = o["status"]?.GetValue<string>() ?? "error";
        return new EmbeddingFileInfo
        {
            Status = status switch
            {
                "ok" => EmbeddingReadStatus.Ok,
                "ignored" => EmbeddingReadStatus.Ignored,
                "data_issue" => EmbeddingReadStatus.DataIssue,
                _ => EmbeddingReadStatus.Error,
            },
            Name = o["name"]?.ToString(),
            Vectors = o["vectors"]?.GetValue<int>() ?? 0,
            Shape = o["shape"]?.GetValue<int>() ?? 0,
            VecShape = o["vec_shape"]?.DeepClone(),
            Step = o["step"]?.DeepClone(),
            SdCheckpoint = o["sd_checkpoint"]?.DeepClone(),
            SdCheckpointName = o["sd_checkpoint_name"]?.DeepClone(),
            Exception = o["exception"]?.GetValue<string>(),
            Message = o["message"]?.GetValue<string>(),
        };
    }

    /// <summary>Writes the object <see cref="FromJson"/> reads.</summary>
    public JsonObject ToJson() => new()
    {
        ["status"] = Status switch
        {
            EmbeddingReadStatus.Ok => "ok",
            EmbeddingReadStatus.Ignored => "ignored",
            EmbeddingReadStatus.DataIssue => "data_issue",
            _ => "error",
        },
        ["name"] = Name,
        ["vectors"] = Vectors,
        ["shape"] = Shape,
        ["vec_shape"] = VecShape?.DeepClone(),
        ["step"] = Step?.DeepClone(),
        ["sd_checkpoint"] = SdCheckpoint?.DeepClone(),
        ["sd_checkpoint_name"] = SdCheckpointName?.DeepClone(),
        ["exception"] = Exception,
        ["message"] = Message,
    };
}

/// <summary>Reads the files whose description needs their contents (pickles and images), in Python.</summary>
public interface IEmbeddingFileReader
{
    /// <summary>One description per path, in order.</summary>
    Task<IReadOnlyList<EmbeddingFileInfo>> DescribeAsync(IReadOnlyList<string> paths, CancellationToken ct);
}

/// <summary>Finding embedding files as A1111's <c>EmbeddingDatabase.load_from_dir</c> does, and reading safetensors headers.</summary>
public static class EmbeddingFiles
{
    private static readonly string[] ImageExtensions = [".PNG", ".WEBP", ".JXL", ".AVIF"];

    /// <summary>Python's <c>os.path.splitext</c>: the last extension, leading dots of the name not counting.</summary>
    public static (string Stem, string Extension) SplitExtension(string fileName)
    {
        int dot = fileName.LastIndexOf('.');
        if (dot <= 0) return (fileName, "");
        // A name made of dots up to here (".pt", "..pt") has no extension.
        for (int i = 0; i < dot; i++)
            if (fileName[i] != '.') return (fileName[..dot], fileName[dot..]);
        return (fileName, "");
    }

    /// <summary>
    /// The files A1111 would read under <paramref name="root"/>, in <c>os.walk</c> order (a folder's files, then each
    /// subfolder; names in code-point order, links followed once): extension <c>.pt</c>/<c>.bin</c>/<c>.safetensors</c>
    /// or an image that is not <c>*.preview.*</c>, not empty. A missing folder yields nothing.
    /// </summary>
    public static IReadOnlyList<EmbeddingFile> Walk(string root)
    {
        var result = new List<EmbeddingFile>();
        if (!Directory.Exists(root)) return result;
        var full = Path.GetFullPath(root);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        WalkInto(full, full, result, seen);
        return result;
    }

    private static void WalkInto(string root, string dir, List<EmbeddingFile> into, HashSet<string> seen)
    {
        // A link back up the tree would loop forever; each real folder is walked once.
        string real = new DirectoryInfo(dir).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dir;
        if (!seen.Add(real)) return;
        string[] files, dirs;
        try
        {
            var opts = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true };
            files = Directory.GetFiles(dir, "*", opts);
            dirs = Directory.GetDirectories(dir, "*", opts);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        Array.Sort(files, StringComparer.Ordinal);
        Array.Sort(dirs, StringComparer.Ordinal);
        foreach (var path in files)
        {
            string name = Path.GetFileName(path);
            var (stem, ext) = SplitExtension(name);
            string upper = ext.ToUpperInvariant();
            EmbeddingFileFormat format;
            if (upper is ".PT" or ".BIN") format = EmbeddingFileFormat.Pickle;
            else if (upper == ".SAFETENSORS") format = EmbeddingFileFormat.Safetensors;
            else if (ImageExtensions.Contains(upper))
            {
                if (SplitExtension(stem).Extension.Equals(".preview", StringComparison.OrdinalIgnoreCase)) continue;
                format = EmbeddingFileFormat.Image;
            }
            else continue;
            long size;
            try { size = new FileInfo(path).Length; }
            catch (IOException) { continue; }
            if (size == 0) continue; // A1111 skips empty files before reading them, without a word
            into.Add(new EmbeddingFile(path, root, Path.GetRelativePath(root, path).Replace('\\', '/'), stem, format));
        }
        foreach (var d in dirs) WalkInto(root, d, into, seen);
    }

    /// <summary>
    /// Describes a safetensors embedding from its header alone, branch for branch as A1111's
    /// <c>create_embedding_from_data</c> treats the dictionary <c>safetensors.torch.load_file</c> returns.
    /// </summary>
    public static EmbeddingFileInfo DescribeSafetensors(string path)
    {
        SafetensorsHeader header;
        try
        {
            header = SafetensorsHeader.Read(path);
        }
        catch (Exception e) when (e is ModelFileException or IOException or UnauthorizedAccessException)
        {
            return Error("SafetensorError", e.Message);
        }
        var t = header.TensorsByName;
        if (t.ContainsKey("string_to_param"))
            return Error("AttributeError", $"{path}: 'string_to_param' is a tensor, not a dictionary of parameters");
        if (t.TryGetValue("clip_g", out var g) && t.TryGetValue("clip_l", out var l))
        {
            if (g.Shape.Count == 0 || l.Shape.Count == 0)
                return Error("IndexError", $"{path}: clip_g or clip_l is a scalar");
            var shapes = new JsonObject();
            foreach (var x in header.Tensors) shapes[x.Name] = Shape(x.Shape);
            return new EmbeddingFileInfo
            {
                Status = EmbeddingReadStatus.Ok,
                Vectors = (int)g.Shape[0],
                Shape = (int)(g.Shape[^1] + l.Shape[^1]),
                VecShape = shapes,
            };
        }
        if (header.Tensors.Count == 0)
            return Error("StopIteration", $"{path}: no tensors");
        if (header.Tensors.Count != 1)
            return Error("AssertionError", $"{path}: embedding file has multiple terms in it");
        var only = header.Tensors[0];
        var shape = only.Shape.Count == 1 ? [1, only.Shape[0]] : only.Shape.ToList();
        if (shape.Count == 0)
            return Error("IndexError", $"{path}: the tensor is a scalar");
        return new EmbeddingFileInfo
        {
            Status = EmbeddingReadStatus.Ok,
            Vectors = (int)shape[0],
            Shape = (int)shape[^1],
            VecShape = Shape(shape),
        };
    }

    private static JsonArray Shape(IEnumerable<long> dims) => new(dims.Select(d => (JsonNode)JsonValue.Create(d)).ToArray());

    private static EmbeddingFileInfo Error(string exception, string message) =>
        new() { Status = EmbeddingReadStatus.Error, Exception = exception, Message = message };

    /// <summary>Parses the JSON array <c>lorabridge.embeddings.describe_files</c> returns.</summary>
    public static IReadOnlyList<EmbeddingFileInfo> ParseDescriptions(string json) =>
        (JsonNode.Parse(json) as JsonArray ?? throw new JsonException("expected a JSON array of descriptions"))
        .Select(n => EmbeddingFileInfo.FromJson(n as JsonObject ?? throw new JsonException("expected an object per file")))
        .ToList();
}
