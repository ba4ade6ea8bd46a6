using System.IO.Compression;
using System.Text;

namespace LoraBridge.Models;

/// <summary>
/// What a checkpoint file is, from its key names (and shapes where the file format stores them), without loading a
/// weight: the family, whether LoraBridge runs it, and a description of what was recognised.
/// </summary>
/// <param name="Family">The base-model family (SD1, SD2, SDXL; Unknown when no text encoder was recognised).</param>
/// <param name="Supported">True for the families LoraBridge loads: SD 1.x and SDXL base (not refiners, not inpainting).</param>
/// <param name="Detail">What was recognised, e.g. "SDXL refiner (conditioner.embedders.0 is OpenCLIP, no CLIP-L)".</param>
public sealed record CheckpointKind(BaseFamily Family, bool Supported, string Detail)
{
    // Key prefixes of the single-file layouts A1111 and ComfyUI read.
    private const string SdxlClipL = "conditioner.embedders.0.transformer.";
    private const string SdxlOpenClip = "conditioner.embedders.1.model.";
    private const string RefinerOpenClip = "conditioner.embedders.0.model.";
    private const string Sd2OpenClip = "cond_stage_model.model.transformer.";
    private const string Sd1Clip = "cond_stage_model.transformer.";
    private const string UnetInput = "model.diffusion_model.input_blocks.0.0.weight";

    /// <summary>Not a checkpoint LoraBridge recognised.</summary>
    public static CheckpointKind Unknown(string detail) => new(BaseFamily.Unknown, false, detail);

    /// <summary>
    /// The image size generation defaults to on this family: 1024×1024 for SDXL (its training size), 512×512 otherwise
    /// (A1111's default for every model).
    /// </summary>
    public (int Width, int Height) DefaultSize => Family == BaseFamily.SDXL ? (1024, 1024) : (512, 512);

    /// <summary>Classifies a checkpoint from its key names and, when known, the UNet's input-convolution shape.</summary>
    /// <param name="keys">Every tensor name of the file.</param>
    /// <param name="unetInputShape">Shape of <c>model.diffusion_model.input_blocks.0.0.weight</c>, or null when not known.</param>
    public static CheckpointKind FromKeys(IEnumerable<string> keys, IReadOnlyList<long>? unetInputShape)
    {
        bool clipL = false, openClip = false, refinerClip = false, sd2 = false, sd1 = false;
        foreach (var k in keys)
        {
            clipL |= k.StartsWith(SdxlClipL, StringComparison.Ordinal);
            openClip |= k.StartsWith(SdxlOpenClip, StringComparison.Ordinal);
            refinerClip |= k.StartsWith(RefinerOpenClip, StringComparison.Ordinal);
            sd2 |= k.StartsWith(Sd2OpenClip, StringComparison.Ordinal);
            sd1 |= k.StartsWith(Sd1Clip, StringComparison.Ordinal);
        }
        // 9 input channels: 4 latent + 4 masked-image latent + 1 mask (inpainting models).
        bool inpainting = unetInputShape is { Count: 4 } s && s[1] == 9;
        if (openClip && clipL)
        {
            return inpainting
                ? new(BaseFamily.SDXL, false, "SDXL inpainting (9-channel UNet input), not supported yet")
                : new(BaseFamily.SDXL, true, "SDXL base (CLIP-L in conditioner.embedders.0, OpenCLIP bigG in conditioner.embedders.1)");
        }
        if (refinerClip && !clipL)
            return new(BaseFamily.SDXL, false, "SDXL refiner (conditioner.embedders.0 is OpenCLIP, no CLIP-L), not supported");
        if (sd2) return new(BaseFamily.SD2, false, "SD 2.x (OpenCLIP text encoder in cond_stage_model.model), not supported");
        if (sd1)
        {
            return inpainting
                ? new(BaseFamily.SD1, false, "SD 1.x inpainting (9-channel UNet input), not supported yet")
                : new(BaseFamily.SD1, true, "SD 1.x (CLIP-L in cond_stage_model.transformer)");
        }
        return Unknown("no known text encoder keys (cond_stage_model.transformer., conditioner.embedders.*)");
    }

    /// <summary>Classifies a safetensors checkpoint from its header.</summary>
    public static CheckpointKind FromHeader(SafetensorsHeader header) =>
        FromKeys(header.Tensors.Select(t => t.Name), header.TensorsByName.TryGetValue(UnetInput, out var input) ? input.Shape : null);

    /// <summary>
    /// Classifies a checkpoint file: a safetensors header, or the key names in a torch zip's <c>data.pkl</c>. The
    /// pickle is searched for the key prefixes as bytes, never unpickled, so no code in it can run; it stores no
    /// shapes, so inpainting is not told apart there (loading still refuses it). Legacy (non-zip) pickles give Unknown.
    /// </summary>
    /// <exception cref="ModelFileException">A safetensors header that cannot be read.</exception>
    public static CheckpointKind Detect(string path)
    {
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return FromHeader(SafetensorsHeader.Read(path));
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var pickle = zip.Entries.FirstOrDefault(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
            if (pickle is null) return Unknown($"{path}: a zip without data.pkl");
            using var stream = pickle.Open();
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return FromPickledKeys(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        }
        catch (InvalidDataException)
        {
            return Unknown($"{path}: not a torch zip checkpoint (legacy pickles are classified when loaded)");
        }
    }

    /// <summary>The key prefixes found in pickle bytes (key strings are stored verbatim in UTF-8).</summary>
    internal static CheckpointKind FromPickledKeys(ReadOnlySpan<byte> pickle)
    {
        var found = new List<string>();
        foreach (var prefix in new[] { SdxlClipL, SdxlOpenClip, RefinerOpenClip, Sd2OpenClip, Sd1Clip })
            if (pickle.IndexOf(Encoding.UTF8.GetBytes(prefix)) >= 0) found.Add(prefix);
        return FromKeys(found, null);
    }
}
