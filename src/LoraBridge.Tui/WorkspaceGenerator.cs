using System.Collections.Concurrent;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;

namespace LoraBridge.Tui;

/// <summary>Adapts a <see cref="GenerationWorkspace"/> to the view model: one job at a time, with its warnings.</summary>
/// <param name="workspace">The workspace.</param>
/// <param name="previews">Live preview source (<see cref="LivePreviews.FromBridge"/>), asked with <see cref="PreviewRequest"/>; null: no live previews.</param>
/// <param name="workspaceFor">Makes the workspace of another checkpoint (name or path); null: the checkpoint cannot change.</param>
public sealed class WorkspaceGenerator(GenerationWorkspace workspace, Func<LivePreviewRequest, CancellationToken, Task<LiveFrame?>>? previews = null,
    Func<string, GenerationWorkspace>? workspaceFor = null)
{
    /// <summary>The workspace of the current checkpoint.</summary>
    public GenerationWorkspace Workspace { get; private set; } = KeepingPatches(workspace);

    /// <summary>The checkpoint <see cref="Workspace"/> uses, as the form names it.</summary>
    public string CurrentCheckpoint { get; private set; } = CheckpointName(workspace);

    /// <summary>The checkpoint the next job should use (the form's choice when the job started); null: keep the current one.</summary>
    public Func<string?>? CheckpointOf { get; set; }

    /// <summary>The live preview method of the next job (the form's choice when the job started); null: Approx cheap.</summary>
    public Func<PreviewMethod>? PreviewMethodOf { get; set; }

    /// <summary>
    /// What the next job's live previews ask for: the method of <see cref="PreviewMethodOf"/> and the models folders the
    /// upscalers and extensions use (<see cref="UpscalerLocations.ModelsDirs"/>), whose <c>VAE-approx</c> holds TAESD files.
    /// </summary>
    public LivePreviewRequest PreviewRequest() =>
        new(PreviewMethodOf?.Invoke() ?? PreviewMethod.ApproxCheap, UpscalerLocations.ModelsDirs(Workspace.Sources.Settings));

    // One session runs many jobs: a job with the previous one's LoRAs and weights patches nothing (cancelled or failed
    // jobs still restore the base weights).
    private static GenerationWorkspace KeepingPatches(GenerationWorkspace w)
    {
        w.Engine.KeepNetworksBetweenJobs = true;
        return w;
    }

    /// <summary>How the form names the checkpoint a workspace is configured with.</summary>
    public static string CheckpointName(GenerationWorkspace w) =>
        w.Sources.BuiltInCheckpoint ?? w.Sources.Settings.Checkpoint
        ?? (w.UsesDemoModel ? DemoCheckpoints.Sd1 : w.Catalog.Checkpoints.FirstOrDefault()?.Name ?? DemoCheckpoints.Sd1);

    /// <summary>
    /// The checkpoints to choose from: the current one, both built-in demo models (SD1 and SDXL) and every checkpoint
    /// in the model folders (A1111's names: the path under the folder).
    /// </summary>
    public IReadOnlyList<string> CheckpointChoices() =>
        [.. new[] { CurrentCheckpoint, DemoCheckpoints.Sd1, DemoCheckpoints.Sdxl }.Concat(Workspace.Catalog.Checkpoints.Select(c => c.Name))
            .Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// The image upscalers for the hires choice: A1111's built-ins and the ESRGAN-family files of the models folders
    /// (<see cref="UpscalerNames"/>; directory listing only, no Python).
    /// </summary>
    public IReadOnlyList<string> UpscalerChoices() => UpscalerNames.List(UpscalerLocations.Folders(Workspace.Sources.Settings));

    /// <summary>
    /// Switches to <paramref name="checkpoint"/> when it differs from the current one: a new workspace (model sources,
    /// tokenizer, engine with the same extension hooks) is prepared, and only then replaces the current one, so a
    /// checkpoint that fails to load leaves the previous one in use.
    /// </summary>
    private async Task SwitchAsync(string checkpoint, CancellationToken ct)
    {
        if (workspaceFor is null || checkpoint.Length == 0 || checkpoint == CurrentCheckpoint) return;
        var next = KeepingPatches(workspaceFor(checkpoint));
        next.Engine.Hooks = Workspace.Engine.Hooks;
        var prepared = await next.PrepareAsync(ct).ConfigureAwait(false);
        Workspace = next;
        CurrentCheckpoint = checkpoint;
        Chunker = prepared.Chunker;
        Prepared = prepared;
    }

    /// <summary>The LoRA cards: alias with the sidecar's preferred weight and activation text, as A1111's card click uses them.</summary>
    public IReadOnlyList<LoraCard> LoraCards(bool rescan = false)
    {
        if (rescan) Workspace.Catalog.Rescan();
        return Workspace.Catalog.Loras
            .Select(e => LoraCard.From(e, Workspace.Catalog.AliasOf(e)))
            .DistinctBy(c => c.Alias, StringComparer.Ordinal)
            .OrderBy(c => c.Alias, StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>The prepared checkpoint (path, family, embeddings); null until <see cref="PrepareAsync"/> has run.</summary>
    public CheckpointContext? Prepared { get; private set; }

    private readonly ConcurrentDictionary<string, BaseFamily> _families = new(StringComparer.Ordinal);

    /// <summary>
    /// The family of the checkpoint the form names, without Python: the prepared checkpoint's when it is that one,
    /// SD1/SDXL for the built-in demo names, else the catalog entry's (metadata or text-encoder keys) or, for a file
    /// path or a pickled checkpoint, <see cref="CheckpointKind.Detect"/> (key names only, nothing unpickled);
    /// Unknown when none of these tells.
    /// </summary>
    public BaseFamily FamilyOf(string checkpoint)
    {
        if (Prepared is { } p && checkpoint == CurrentCheckpoint && p.Family != BaseFamily.Unknown) return p.Family;
        switch (DemoCheckpoints.Match(checkpoint))
        {
            case DemoCheckpoints.Sd1: return BaseFamily.SD1;
            case DemoCheckpoints.Sdxl: return BaseFamily.SDXL;
        }
        return _families.GetOrAdd(checkpoint, name =>
        {
            var entry = Workspace.Catalog.Checkpoints.FirstOrDefault(c => c.Name == name || c.ModelName == name || c.NameForExtra == name);
            if (entry is { Family: not BaseFamily.Unknown }) return entry.Family;
            var path = entry?.FilePath ?? (File.Exists(name) ? name : null);
            if (path is null) return BaseFamily.Unknown;
            try { return CheckpointKind.Detect(path).Family; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return BaseFamily.Unknown; }
        });
    }

    /// <summary>
    /// The embeddings of the prepared checkpoint as the workspace loaded them (its text encoder decides which are
    /// loaded or skipped; pickled files were read by Python during <see cref="PrepareAsync"/>, so listing starts
    /// nothing). Null before <see cref="PrepareAsync"/>; empty when no embeddings folder is configured.
    /// </summary>
    public IReadOnlyList<EmbeddingCard>? EmbeddingCards() =>
        Prepared is null ? null : Prepared.Embeddings is { } db ? EmbeddingCard.From(db) : [];

    /// <summary>The checkpoint's CLIP chunker (for the token counter); null until <see cref="PrepareAsync"/> has run.</summary>
    public LoraBridge.Tokenizers.PromptChunker? Chunker { get; private set; }

    /// <summary>Appended to the status line once the checkpoint is ready (e.g. which extensions loaded); null: nothing.</summary>
    public string? ReadyNote { get; init; }

    /// <summary>Finds the checkpoint (creating the demo model on first use); returns a description for the status line.</summary>
    public async Task<string> PrepareAsync(CancellationToken ct)
    {
        var checkpoint = await Workspace.PrepareAsync(ct).ConfigureAwait(false);
        Chunker = checkpoint.Chunker;
        Prepared = checkpoint;
        return checkpoint.Name + (Workspace.UsesDemoModel ? " (built-in demo model)" : "") + (ReadyNote is null ? "" : "; " + ReadyNote);
    }

    /// <summary>Runs one request (<see cref="Generator"/>).</summary>
    public async Task<JobResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken ct)
    {
        if (CheckpointOf?.Invoke() is { } wanted) await SwitchAsync(wanted, ct).ConfigureAwait(false);
        Workspace.Warnings.Clear();
        LivePreviews? live = null;
        if (previews is not null && progress is IPreviewSink sink)
        {
            var asked = PreviewRequest();
            live = new LivePreviews(progress, sink, c => previews(asked, c), ct);
        }
        var images = await Workspace.GenerateAsync(request, live ?? progress, ct).ConfigureAwait(false);
        if (live?.Failure is { } failure) Console.Error.WriteLine($"warning: live previews stopped: {failure.Message}");
        // A TAESD preview that fell back (file missing or unusable) says so once, on the status line.
        return new JobResult(images, [.. Workspace.Warnings, .. live?.Note is { } note ? [note] : Array.Empty<string>()]);
    }
}
