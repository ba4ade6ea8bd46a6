using System.Globalization;
using LoraBridge.Models;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>
/// SDXL's size conditioning (sgm's <c>original_size_as_tuple</c>, <c>crop_coords_top_left</c>,
/// <c>target_size_as_tuple</c>). A1111 v1.10.1 txt2img uses the image size for both sizes and crop 0,0
/// (<c>sdxl_crop_top</c>/<c>sdxl_crop_left</c> default 0).
/// </summary>
/// <param name="Width">Target width in pixels (the image being generated).</param>
/// <param name="Height">Target height in pixels.</param>
/// <param name="CropTop">Crop top coordinate.</param>
/// <param name="CropLeft">Crop left coordinate.</param>
/// <param name="OriginalWidth">Original width; 0 = <paramref name="Width"/>.</param>
/// <param name="OriginalHeight">Original height; 0 = <paramref name="Height"/>.</param>
public sealed record SdxlSize(int Width, int Height, int CropTop = 0, int CropLeft = 0, int OriginalWidth = 0, int OriginalHeight = 0)
{
    /// <summary>The part of a conditioning cache key that depends on the size.</summary>
    public string Key => string.Create(CultureInfo.InvariantCulture,
        $"{Width}x{Height}+{CropTop},{CropLeft}/{(OriginalWidth == 0 ? Width : OriginalWidth)}x{(OriginalHeight == 0 ? Height : OriginalHeight)}");
}

/// <summary>One SDXL encode call: the texts of one prompt's schedule, encoded as one batch by both text encoders.</summary>
/// <param name="Texts">Per text, its chunks for the first encoder (CLIP-L role): ids padded with the end token, and the
/// emphasis weights both encoders use. Every text has the same chunk count.</param>
/// <param name="Te2Ids">Per text and chunk, the second encoder's ids (<see cref="OpenClipChunks.PadAfterEnd"/>).</param>
/// <param name="Size">The size conditioning.</param>
/// <param name="ZeroText">A1111's <c>force_zero_embeddings=['txt']</c>: a negative prompt whose every schedule text
/// is empty; the cross-attention and pooled parts become 0, the size embeddings stay.</param>
public sealed record SdxlEncoding(IReadOnlyList<IReadOnlyList<TokenChunk>> Texts, IReadOnlyList<IReadOnlyList<int[]>> Te2Ids,
    SdxlSize Size, bool ZeroText);

/// <summary>A backend that can encode SDXL conditioning (two text encoders, pooled vector, size embeddings).</summary>
public interface ISdxlGenerationBackend
{
    /// <summary>
    /// Encodes the texts as one batch under the current text-encoder weights; one handle per text, used in
    /// <see cref="IGenerationBackend.StepAsync"/> like an SD1 handle.
    /// </summary>
    Task<IReadOnlyList<ConditioningHandle>> EncodeSdxlAsync(SdxlEncoding encoding, CancellationToken ct);
}

/// <summary>
/// How the engine turns a batch of chunked texts into conditioning handles for one checkpoint family, and what of
/// that depends on the job (part of the conditioning cache key).
/// </summary>
internal abstract class ConditioningEncoder
{
    /// <summary>The encoder for <paramref name="checkpoint"/>'s family.</summary>
    /// <exception cref="NotSupportedException">An SDXL checkpoint on a backend without SDXL conditioning.</exception>
    public static ConditioningEncoder For(IGenerationBackend backend, CheckpointContext checkpoint, GenerationRequest request)
    {
        if (checkpoint.Family != BaseFamily.SDXL) return new Sd1Encoder(backend, request.ClipSkip);
        if (backend is not ISdxlGenerationBackend xl)
            throw new NotSupportedException($"{checkpoint.Path} is an SDXL checkpoint and this backend cannot encode SDXL conditioning");
        return new SdxlEncoder(xl, new SdxlSize(request.Width, request.Height));
    }

    /// <summary>
    /// The encoder for the hires pass, or null when there is none. A1111 conditions SDXL's hires pass on the upscaled
    /// size (<c>SdConditioning(hr_prompts, width=hr_upscale_to_x, height=hr_upscale_to_y)</c>, before the crop to a
    /// resize box); SD1 conditioning does not depend on the size, so its encoder is the first pass's.
    /// </summary>
    public static ConditioningEncoder? ForHires(IGenerationBackend backend, CheckpointContext checkpoint, GenerationRequest request)
    {
        if (request.Hires is not { } hr || checkpoint.Family != BaseFamily.SDXL) return null;
        var (width, height) = HiresRules.Target(request.Width, request.Height, hr);
        return For(backend, checkpoint, request with { Width = width, Height = height });
    }

    /// <summary>
    /// What a text's conditioning depends on besides its batch, text and text-encoder multipliers; the first field of
    /// the cache key.
    /// </summary>
    public abstract string Scope(IReadOnlyList<string> batch, bool negative);

    /// <summary>Encodes one batch (all texts with the same chunk count); one handle per text.</summary>
    public abstract Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts,
        IReadOnlyList<string> batch, bool negative, CancellationToken ct);

    private sealed class Sd1Encoder(IGenerationBackend backend, int clipSkip) : ConditioningEncoder
    {
        // The clip skip alone, as the SD1 cache key always had it.
        public override string Scope(IReadOnlyList<string> batch, bool negative) => clipSkip.ToString(CultureInfo.InvariantCulture);

        public override Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts,
            IReadOnlyList<string> batch, bool negative, CancellationToken ct) => backend.EncodeAsync(texts, clipSkip, ct);
    }

    private sealed class SdxlEncoder(ISdxlGenerationBackend backend, SdxlSize size) : ConditioningEncoder
    {
        // Clip skip does not reach SDXL's encoders (A1111's sdxl_clip_l_skip is off by default), so it is not in the
        // key; the size vector and the zeroing of an empty negative prompt are.
        public override string Scope(IReadOnlyList<string> batch, bool negative) =>
            "sdxl " + size.Key + (SdxlConditioning.ZeroesText(batch, negative) ? " zero" : "");

        public override Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts,
            IReadOnlyList<string> batch, bool negative, CancellationToken ct) =>
            backend.EncodeSdxlAsync(SdxlConditioning.Encoding(texts, size, SdxlConditioning.ZeroesText(batch, negative)), ct);
    }
}

/// <summary>A1111 v1.10.1's SDXL conditioning rules that live on the C# side.</summary>
public static class SdxlConditioning
{
    /// <summary>
    /// A1111's <c>force_zero_negative_prompt</c>: true only for a negative prompt whose every schedule text is empty.
    /// A positive empty prompt, or a negative one with any non-empty schedule entry (<c>[:blurry:0.5]</c>), is encoded.
    /// </summary>
    public static bool ZeroesText(IReadOnlyList<string> batch, bool negative) => negative && batch.All(t => t.Length == 0);

    /// <summary>
    /// The encode call for a batch of chunked texts: the first encoder's chunks as they are, the second encoder's ids
    /// padded with 0 after the first end token (each chunk's last position always holds the end token).
    /// </summary>
    public static SdxlEncoding Encoding(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, SdxlSize size, bool zeroText) =>
        new(texts, texts.Select(t => (IReadOnlyList<int[]>)t.Select(c => OpenClipChunks.PadAfterEnd(c.Ids, c.Ids[^1])).ToList()).ToList(), size, zeroText);
}
