using LoraBridge.Models;
using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>A conditioning tensor held by the backend.</summary>
/// <param name="Id">Backend handle.</param>
public readonly record struct ConditioningHandle(long Id);

/// <summary>A running sampler (latent, RNG streams, schedule) held by the backend.</summary>
/// <param name="Id">Backend handle.</param>
/// <param name="TotalCalls">Model calls the run needs (steps; DDIM makes one fewer).</param>
/// <param name="InfotextParams">Sampler entries A1111 writes into infotext (e.g. the resolved "Schedule type").</param>
public sealed record SamplingHandle(long Id, int TotalCalls, IReadOnlyList<KeyValuePair<string, string>> InfotextParams);

/// <summary>Absolute multipliers of one network (A1111's <c>&lt;lora:name:te:unet:dyn&gt;</c>).</summary>
/// <param name="Name">Catalog name the backend loaded the file under.</param>
/// <param name="Te">Text-encoder multiplier.</param>
/// <param name="Unet">UNet multiplier.</param>
/// <param name="Dyn">Rank limit, or <c>null</c>.</param>
public sealed record NetworkSetting(string Name, double Te, double Unet, int? Dyn);

/// <summary>One 77-token chunk: token ids and per-token emphasis weights.</summary>
/// <param name="Ids">77 token ids (BOS, up to 75 tokens, EOS padding).</param>
/// <param name="Weights">77 weights.</param>
/// <param name="Fixes">Textual-inversion embeddings whose vectors overwrite this chunk's placeholders; null: none.</param>
public sealed record TokenChunk(int[] Ids, double[] Weights, IReadOnlyList<TokenFix>? Fixes = null)
{
    /// <summary>A chunker chunk with its embedding fixes.</summary>
    public static TokenChunk From(PromptChunk chunk) => new(chunk.Ids, chunk.Weights,
        chunk.Fixes is { Count: > 0 } f ? f.Select(x => { var e = EmbeddingDatabase.EntryOf(x); return new TokenFix(x.Offset, e.Key, e.File.Path); }).ToList() : null);
}

/// <summary>An embedding placed in a chunk: its vectors go after token <paramref name="Offset"/> + 1 (A1111's offset).</summary>
/// <param name="Offset">Index among the chunk's tokens without BOS.</param>
/// <param name="Key">Key the backend keeps the vectors under (name, file, hash).</param>
/// <param name="Path">The embedding file.</param>
public sealed record TokenFix(int Offset, string Key, string Path);

/// <summary>What starts a sampling run (one batch).</summary>
/// <param name="Sampler">A1111 sampler name.</param>
/// <param name="Schedule">A1111 schedule type.</param>
/// <param name="Steps">Sampling steps.</param>
/// <param name="Seed">Seed of the first image; image i uses seed + i.</param>
/// <param name="BatchSize">Images in the batch.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="RandnSource">"GPU", "CPU" or "NV", as A1111's setting.</param>
/// <param name="EtaNoiseSeedDelta">A1111's ENSD.</param>
public sealed record SamplingSettings(string Sampler, string Schedule, int Steps, long Seed, int BatchSize, int Width, int Height,
    string RandnSource, long EtaNoiseSeedDelta);

/// <summary>
/// The model side of a generation: the engine decides what conditions each step and which network
/// multipliers hold; the backend (Python) does the tensor work. Implemented over the Python bridge by
/// <see cref="PythonGenerationBackend"/>.
/// </summary>
/// <remarks>
/// Calls run in the order they are issued, and the engine may issue the next call before the previous one has
/// completed (it queues step i+1 while step i runs, so the Python thread never idles between steps).
/// </remarks>
public interface IGenerationBackend
{
    /// <summary>Loads a checkpoint, or keeps the loaded one when it is the same file.</summary>
    /// <returns><c>true</c> when a load happened.</returns>
    Task<bool> LoadCheckpointAsync(string path, CancellationToken ct);

    /// <summary>Reads and validates a LoRA-family file once, under <paramref name="name"/>.</summary>
    Task LoadNetworkAsync(string name, string path, CancellationToken ct);

    /// <summary>Makes the weights equal to the base with exactly these networks, in order (absolute).</summary>
    Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct);

    /// <summary>Restores the base weights bit for bit.</summary>
    Task RestoreAsync();

    /// <summary>Warnings for networks whose layers failed to merge in the current patch (file and first failing key).</summary>
    Task<IReadOnlyList<string>> LayerWarningsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>Layers patched and seconds spent patching since the model was loaded (cumulative), or null when not counted.</summary>
    Task<(long Layers, double Seconds)?> PatchTotalsAsync(CancellationToken ct) => Task.FromResult<(long, double)?>(null);

    /// <summary>
    /// Replaces the table of LoRA block weights (by network name) that later <see cref="SetNetworksAsync"/> calls apply;
    /// an empty list clears it. Backends without block-weight support reject a non-empty table.
    /// </summary>
    Task SetBlockWeightsAsync(IReadOnlyList<LoraBlockWeights> weights, CancellationToken ct) =>
        weights.Count == 0 ? Task.CompletedTask : throw new NotSupportedException("this backend has no LoRA block weights");

    /// <summary>
    /// Encodes texts as one batch under the current text-encoder weights, as A1111 encodes the texts of one prompt's
    /// schedule (emphasis restores the mean of the whole batch). All texts have the same chunk count. One handle per text.
    /// </summary>
    Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct);

    /// <summary>Draws the initial noise and prepares the schedule.</summary>
    Task<SamplingHandle> StartAsync(SamplingSettings settings, CancellationToken ct);

    /// <summary>One guided model call with AND-parts <paramref name="positive"/> and the negative conditioning.</summary>
    Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, CancellationToken ct);

    /// <summary>Decodes the final latents to PNG bytes, each carrying its infotext.</summary>
    Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct);

    /// <summary>Frees a handle's tensors.</summary>
    Task ReleaseAsync(long handle);
}
