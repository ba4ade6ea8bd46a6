namespace LoraBridge.Tokenizers;

/// <summary>
/// The token ids SDXL's second text encoder (OpenCLIP ViT-bigG) reads, derived from the first encoder's chunk.
/// </summary>
/// <remarks>
/// A1111 v1.10.1 tokenizes and chunks the prompt for both SDXL encoders with the same BPE files and the same rules
/// (<c>FrozenOpenCLIPEmbedder2WithCustomWords</c> subclasses the CLIP-L wrapper), so the chunks, their token counts
/// and the emphasis multipliers are the same. The one difference is the padding: the OpenCLIP wrapper's
/// <c>id_pad</c> is 0, and <c>process_tokens</c> overwrites every position after the first end token with it
/// (the chunk is built with end-token padding first, as for CLIP-L). Empty padding chunks get the same treatment.
/// </remarks>
public static class OpenClipChunks
{
    /// <summary>A1111's <c>id_pad</c> for the OpenCLIP encoder.</summary>
    public const int PadId = 0;

    /// <summary>
    /// <paramref name="ids"/> with every position after the first <paramref name="endId"/> set to
    /// <paramref name="padId"/>; a copy, the input is not changed.
    /// </summary>
    /// <exception cref="ArgumentException">The chunk has no end token (A1111's <c>list.index</c> would raise).</exception>
    public static int[] PadAfterEnd(IReadOnlyList<int> ids, int endId, int padId = PadId)
    {
        var result = ids.ToArray();
        int end = Array.IndexOf(result, endId);
        if (end < 0) throw new ArgumentException($"the chunk has no end token ({endId}) to pad after", nameof(ids));
        Array.Fill(result, padId, end + 1, result.Length - end - 1);
        return result;
    }
}
