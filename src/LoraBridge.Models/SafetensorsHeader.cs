using System.Text.Json;

namespace LoraBridge.Models;

/// <summary>A file that is not a valid model file; the message names the file and the problem.</summary>
public sealed class ModelFileException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public ModelFileException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
        Problem = problem;
    }

    /// <summary>The file that failed.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the file name.</summary>
    public string Problem { get; }
}

/// <summary>One tensor entry of a safetensors header: name, dtype, shape and byte range in the data section.</summary>
/// <param name="Name">Tensor key.</param>
/// <param name="DType">safetensors dtype code (F32, F16, BF16, I64, ...).</param>
/// <param name="Shape">Dimensions; empty for a scalar.</param>
/// <param name="Begin">Start offset relative to the data section.</param>
/// <param name="End">End offset (exclusive) relative to the data section.</param>
public sealed record TensorInfo(string Name, string DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The header of a safetensors file, read without touching the tensor data: the 8-byte little-endian header length,
/// the JSON header, and validation of every entry against the data section that follows.
/// </summary>
public sealed class SafetensorsHeader
{
    // The safetensors library refuses headers above 100 MB; a larger length means a corrupt or foreign file.
    private const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> DTypeBits = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 8, ["U8"] = 8, ["I8"] = 8, ["F8_E5M2"] = 8, ["F8_E4M3"] = 8, ["F8_E8M0"] = 8,
        ["I16"] = 16, ["U16"] = 16, ["F16"] = 16, ["BF16"] = 16,
        ["I32"] = 32, ["U32"] = 32, ["F32"] = 32, ["C64"] = 64,
        ["I64"] = 64, ["U64"] = 64, ["F64"] = 64,
        ["F4"] = 4, ["F6_E2M3"] = 6, ["F6_E3M2"] = 6,
    };

    private SafetensorsHeader(string path, long headerLength, long fileLength,
        IReadOnlyList<TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        HeaderLength = headerLength;
        FileLength = fileLength;
        Tensors = tensors;
        Metadata = metadata;
        TensorsByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file the header was read from.</summary>
    public string Path { get; }

    /// <summary>Length of the JSON header in bytes (the value of the first 8 bytes).</summary>
    public long HeaderLength { get; }

    /// <summary>Offset of the first tensor byte: 8 + <see cref="HeaderLength"/>.</summary>
    public long DataOffset => 8 + HeaderLength;

    /// <summary>Total file length in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Tensor entries in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Tensor entries by key.</summary>
    public IReadOnlyDictionary<string, TensorInfo> TensorsByName { get; }

    /// <summary>The <c>__metadata__</c> map (string to string), empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads and validates the header of <paramref name="path"/>.</summary>
    /// <exception cref="ModelFileException">The file is not a valid safetensors file.</exception>
    public static SafetensorsHeader Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.None);
        return Read(stream, path);
    }

    /// <summary>Reads and validates a header from a seekable stream positioned anywhere; <paramref name="path"/> names it in errors.</summary>
    public static SafetensorsHeader Read(Stream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw new ModelFileException(path, $"truncated: {fileLength} bytes, a safetensors file starts with an 8-byte header length");

        stream.Position = 0;
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong rawLength = BitConverter.ToUInt64(lenBytes);
        if (rawLength == 0 || rawLength > MaxHeaderBytes)
            throw new ModelFileException(path, $"header length {rawLength} is not plausible (must be 1..{MaxHeaderBytes} bytes)");
        long headerLength = (long)rawLength;
        if (8 + headerLength > fileLength)
            throw new ModelFileException(path, $"truncated: header length {headerLength} runs past the end of the file ({fileLength} bytes)");

        var json = new byte[headerLength];
        stream.ReadExactly(json);

        // Strict UTF-8 first, so an invalid byte anywhere (a key, a metadata value) is an error naming the file and the
        // byte rather than an exception from the middle of the JSON API.
        if (FirstInvalidUtf8(json) is var bad and >= 0)
            throw new ModelFileException(path, $"header is not valid UTF-8 (byte {bad} of the file)");

        JsonDocument doc;
        try
        {
            // Headers may be padded with trailing spaces to align the data section. The depth limit (64 by default)
            // turns deep nesting into a JsonException; real headers are 3 levels deep.
            doc = JsonDocument.Parse(json.AsMemory());
        }
        catch (JsonException e)
        {
            throw new ModelFileException(path, $"header is not valid JSON ({e.Message})", e);
        }

        using (doc)
        {
            try
            {
                return Build(path, doc, headerLength, fileLength);
            }
            catch (InvalidOperationException e)
            {
                // GetString()/Name throw this for escaped lone surrogates ("\ud800"), which are valid JSON but not text.
                throw new ModelFileException(path, $"header holds a string that is not valid Unicode (an escaped lone surrogate): {e.Message}", e);
            }
        }
    }

    // Offset in the file of the first byte that is not UTF-8, or -1 when all are.
    private static long FirstInvalidUtf8(byte[] bytes)
    {
        var chars = new char[bytes.Length];
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false);
        return status == System.Buffers.OperationStatus.Done ? -1 : 8 + read;
    }

    private static SafetensorsHeader Build(string path, JsonDocument doc, long headerLength, long fileLength)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, "header JSON is not an object");

        long dataLength = fileLength - 8 - headerLength;
        var tensors = new List<TensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                ReadMetadata(path, prop.Value, metadata);
                continue;
            }
            tensors.Add(ReadTensor(path, prop.Name, prop.Value, dataLength));
        }
        CheckCoverage(path, tensors, dataLength);
        return new SafetensorsHeader(path, headerLength, fileLength, tensors, metadata);
    }

    /// <summary>Bits per element of a safetensors dtype code, or null when unknown.</summary>
    public static int? BitsOf(string dtype) => DTypeBits.TryGetValue(dtype, out var b) ? b : null;

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> into)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, "__metadata__ is not an object");
        foreach (var m in value.EnumerateObject())
        {
            // The safetensors format and libraries require string values; anything else is refused there too.
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new ModelFileException(path, $"__metadata__ key '{m.Name}' is not a string ({m.Value.ValueKind})");
            into[m.Name] = m.Value.GetString()!;
        }
    }

    private static TensorInfo ReadTensor(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, $"tensor '{name}': entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new ModelFileException(path, $"tensor '{name}': missing or non-string dtype");
        string dtype = dt.GetString()!;
        int bits = BitsOf(dtype) ?? throw new ModelFileException(path, $"tensor '{name}': unknown dtype '{dtype}'");

        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new ModelFileException(path, $"tensor '{name}': missing shape");
        var shape = new List<long>();
        long count = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new ModelFileException(path, $"tensor '{name}': shape {sh.GetRawText()} has an invalid dimension");
            shape.Add(dim);
            count = dim == 0 ? 0 : (count > long.MaxValue / dim ? throw new ModelFileException(path, $"tensor '{name}': shape {sh.GetRawText()} overflows") : count * dim);
        }

        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelFileException(path, $"tensor '{name}': data_offsets must be [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new ModelFileException(path, $"tensor '{name}': data_offsets {off.GetRawText()} are invalid");
        if (end > dataLength)
            throw new ModelFileException(path, $"tensor '{name}': data_offsets {off.GetRawText()} run past the end of the data section ({dataLength} bytes)");

        long expectedBytes = (count * bits + 7) / 8;
        if (end - begin != expectedBytes)
            throw new ModelFileException(path, $"tensor '{name}': {dtype} shape {sh.GetRawText()} needs {expectedBytes} bytes but data_offsets {off.GetRawText()} give {end - begin}");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static void CheckCoverage(string path, List<TensorInfo> tensors, long dataLength)
    {
        // As the safetensors library does: tensors tile the data section without gaps or overlaps.
        long expected = 0;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin != expected)
                throw new ModelFileException(path, t.Begin < expected
                    ? $"tensor '{t.Name}': data_offsets [{t.Begin}, {t.End}] overlap another tensor"
                    : $"tensor '{t.Name}': gap in the data section before offset {t.Begin}");
            expected = t.End;
        }
        if (expected != dataLength)
            throw new ModelFileException(path, $"data section is {dataLength} bytes but the tensors cover {expected}");
    }

    /// <summary>
    /// Metadata as A1111's <c>read_metadata_from_safetensors</c> presents it: values that start with '{' and parse as JSON
    /// become JSON elements (e.g. <c>ss_tag_frequency</c>), others stay strings.
    /// </summary>
    public static JsonElement? MetadataJson(IReadOnlyDictionary<string, string> metadata, string key)
    {
        if (!metadata.TryGetValue(key, out var v) || !v.StartsWith('{'))
            return null;
        try
        {
            using var d = JsonDocument.Parse(v);
            return d.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
