using LoraBridge.Engine;

namespace LoraBridge.Tui;

/// <summary>Adapts a <see cref="GenerationWorkspace"/> to the view model: one job at a time, with its warnings.</summary>
/// <param name="workspace">The workspace.</param>
/// <param name="previews">Live preview source (<see cref="LivePreviews.FromBridge"/>); null: no live previews.</param>
public sealed class WorkspaceGenerator(GenerationWorkspace workspace, Func<CancellationToken, Task<RgbImage?>>? previews = null)
{
    /// <summary>The workspace.</summary>
    public GenerationWorkspace Workspace { get; } = workspace;

    /// <summary>The LoRA cards: alias with the sidecar's preferred weight and activation text, as A1111's card click uses them.</summary>
    public IReadOnlyList<LoraCard> LoraCards(bool rescan = false)
    {
        if (rescan) Workspace.Catalog.Rescan();
        return Workspace.Catalog.Loras
            .Select(e => new LoraCard(Workspace.Catalog.AliasOf(e), e.User.PreferredWeight, e.User.ActivationText))
            .DistinctBy(c => c.Alias, StringComparer.Ordinal)
            .OrderBy(c => c.Alias, StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>The checkpoint's CLIP chunker (for the token counter); null until <see cref="PrepareAsync"/> has run.</summary>
    public LoraBridge.Tokenizers.PromptChunker? Chunker { get; private set; }

    /// <summary>Appended to the status line once the checkpoint is ready (e.g. which extensions loaded); null: nothing.</summary>
    public string? ReadyNote { get; init; }

    /// <summary>Finds the checkpoint (creating the demo model on first use); returns a description for the status line.</summary>
    public async Task<string> PrepareAsync(CancellationToken ct)
    {
        var checkpoint = await Workspace.PrepareAsync(ct).ConfigureAwait(false);
        Chunker = checkpoint.Chunker;
        return checkpoint.Name + (Workspace.UsesDemoModel ? " (built-in demo model)" : "") + (ReadyNote is null ? "" : "; " + ReadyNote);
    }

    /// <summary>Runs one request (<see cref="Generator"/>).</summary>
    public async Task<JobResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken ct)
    {
        Workspace.Warnings.Clear();
        var live = previews is not null && progress is IPreviewSink sink ? new LivePreviews(progress, sink, previews, ct) : null;
        var images = await Workspace.GenerateAsync(request, live ?? progress, ct).ConfigureAwait(false);
        if (live?.Failure is { } failure) Console.Error.WriteLine($"warning: live previews stopped: {failure.Message}");
        return new JobResult(images, [.. Workspace.Warnings]);
    }
}
