using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>Where models come from: an A1111 install, extra folders, an explicit checkpoint, LoraBridge's data folder.</summary>
public sealed record WorkspaceSettings
{
    /// <summary>An A1111 stable-diffusion-webui folder whose <c>models/</c> folders are used.</summary>
    public string? WebUiDir { get; init; }
    /// <summary>LoraBridge's data folder: the demo model, the hash cache.</summary>
    public required string DataDir { get; init; }
    /// <summary>Checkpoint name (as A1111 lists it) or path; null for the configured default or the demo model.</summary>
    public string? Checkpoint { get; init; }
    /// <summary>Folder with the CLIP tokenizer files, overriding discovery.</summary>
    public string? TokenizerDir { get; init; }
    /// <summary>More LoRA folders.</summary>
    public IReadOnlyList<string> LoraDirs { get; init; } = [];
    /// <summary>A1111's behaviour for unknown LoRA names instead of an error.</summary>
    public LoraNotFoundBehavior LoraNotFound { get; init; } = LoraNotFoundBehavior.Error;
}

/// <summary>
/// Puts the pieces of a generation together for one process: the catalog, the checkpoint (or the built-in demo
/// model, created on first use), its tokenizer and one <see cref="GenerationEngine"/> that keeps the model and the
/// conditioning cache between jobs.
/// </summary>
public sealed class GenerationWorkspace
{
    /// <summary>Sub-folder of the data folder holding the demo model, its tokenizer and its LoRAs.</summary>
    public const string DemoFolder = "demo";

    private readonly PythonBridge _bridge;
    private CheckpointContext? _checkpoint;

    /// <summary>Creates the workspace; nothing is loaded until <see cref="PrepareAsync"/>.</summary>
    public GenerationWorkspace(WorkspaceSettings settings, PythonBridge bridge)
    {
        Settings = settings;
        _bridge = bridge;
        Catalog = CreateCatalog(settings);
        Engine = new GenerationEngine(new PythonGenerationBackend(bridge), new A1111PromptPlanner(), ResolveNetwork);
    }

    /// <summary>The settings in use.</summary>
    public WorkspaceSettings Settings { get; }

    /// <summary>LoRA and checkpoint catalog (A1111 folders, configured folders, the demo LoRAs).</summary>
    public LoraCatalog Catalog { get; }

    /// <summary>The engine; reuse it so the model and conditionings stay loaded.</summary>
    public GenerationEngine Engine { get; }

    /// <summary>True when the built-in demo model is in use.</summary>
    public bool UsesDemoModel => Settings.Checkpoint is null && Settings.WebUiDir is null;

    /// <summary>Warnings gathered while preparing (e.g. a LoRA made for another model family).</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>The catalog the CLI's <c>loras</c> commands and generation share: A1111 folders, extra folders, the demo LoRAs.</summary>
    public static LoraCatalog CreateCatalog(WorkspaceSettings settings) => new(new CatalogOptions
    {
        WebUiDir = settings.WebUiDir,
        LoraDirs = [.. settings.LoraDirs, Path.Combine(settings.DataDir, DemoFolder, "Lora")],
        DataDir = settings.DataDir,
        NotFound = settings.LoraNotFound,
    });

    /// <summary>Finds the checkpoint (creating the demo model when none is configured) and its tokenizer.</summary>
    /// <exception cref="FileNotFoundException">The checkpoint does not exist.</exception>
    /// <exception cref="TokenizerNotFoundException">No tokenizer files for the checkpoint.</exception>
    public async Task<CheckpointContext> PrepareAsync(CancellationToken ct)
    {
        if (_checkpoint is not null) return _checkpoint;
        string path = await ResolveCheckpointPathAsync(ct).ConfigureAwait(false);
        var entry = CheckpointEntry.Load(path, Path.GetDirectoryName(path)!);
        // The demo model keeps its own vocabulary in <demo>/tokenizer, beside its A1111-style model folders.
        var tokenizerDir = Settings.TokenizerDir ?? (UsesDemoModel ? Path.Combine(Settings.DataDir, DemoFolder, "tokenizer") : null);
        var location = new TokenizerLocator().Locate(path, tokenizerDir);
        var chunker = new PromptChunker(ClipTokenizer.Load(location));
        return _checkpoint = new CheckpointContext(path, entry.ModelName, entry.ShortHash(Catalog.Hashes), chunker);
    }

    private async Task<string> ResolveCheckpointPathAsync(CancellationToken ct)
    {
        if (Settings.Checkpoint is { } wanted)
        {
            if (File.Exists(wanted)) return Path.GetFullPath(wanted);
            return Catalog.FindCheckpoint(wanted)?.FilePath
                ?? throw new FileNotFoundException($"checkpoint '{wanted}' is neither a file nor a checkpoint in {string.Join(", ", Catalog.Options.EffectiveCheckpointDirs)}", wanted);
        }
        if (Settings.WebUiDir is not null && Catalog.Checkpoints.FirstOrDefault() is { } first) return first.FilePath;
        return await _bridge.EnsureDemoModelAsync(Path.Combine(Settings.DataDir, DemoFolder), ct).ConfigureAwait(false);
    }

    private NetworkFile ResolveNetwork(string name)
    {
        var entry = Catalog.Find(name);
        if (_checkpoint is not null && LoraCatalog.FamilyMismatch(entry, CheckpointEntry.Load(_checkpoint.Path, Path.GetDirectoryName(_checkpoint.Path)!).Family) is { } warning)
            Warnings.Add(warning);
        // A1111 writes the name as mentioned in the prompt, without ':' and ','.
        var mentioned = name.Replace(":", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        return new NetworkFile(name, entry.FilePath, mentioned, Catalog.ShortHashOf(entry));
    }

    /// <summary>Runs one job with the workspace's checkpoint.</summary>
    public async Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var checkpoint = await PrepareAsync(ct).ConfigureAwait(false);
        return await Engine.GenerateAsync(request, checkpoint, progress, ct).ConfigureAwait(false);
    }
}
