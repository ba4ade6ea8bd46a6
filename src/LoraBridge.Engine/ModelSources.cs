using LoraBridge.Models;
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
    /// <summary>Textual-inversion embedding folders (A1111's <c>embeddings/</c> under <see cref="WebUiDir"/> is read after them).</summary>
    public IReadOnlyList<string> EmbeddingDirs { get; init; } = [];
    /// <summary>A1111's behaviour for unknown LoRA names instead of an error.</summary>
    public LoraNotFoundBehavior LoraNotFound { get; init; } = LoraNotFoundBehavior.Error;
    /// <summary>"full" or "autocast" (A1111's <c>--precision</c>); null leaves the runtime's default (autocast).</summary>
    public string? Precision { get; init; }
    /// <summary>Keep the VAE in fp32 on CUDA (A1111's <c>--no-half-vae</c>).</summary>
    public bool NoHalfVae { get; init; }
    /// <summary>MiB of loaded LoRAs kept between jobs (least recently used dropped first); null for the runtime's default (1024).</summary>
    public double? LoraCacheMiB { get; init; }
}

/// <summary>
/// The files a generation would use, found without starting Python: the catalog, the configured checkpoint (or the
/// built-in demo model) and its tokenizer. <c>doctor</c> and <c>loras</c> use it directly; generation through
/// <see cref="GenerationWorkspace"/>.
/// </summary>
public sealed class ModelSources
{
    /// <summary>Sub-folder of the data folder holding the demo model, its tokenizer and its LoRAs.</summary>
    public const string DemoFolder = "demo";

    /// <summary>
    /// The LoRAs the built-in demo model comes with (python/lorabridge/demo.py <c>LORA_NAMES</c>; an end-to-end test
    /// checks they agree). Known before the demo model is first created, so a dry run on a fresh data folder accepts them.
    /// </summary>
    public static readonly IReadOnlyList<string> DemoLoraNames = ["demo_style", "demo_subject"];

    /// <summary>The LoRAs the built-in SDXL demo model comes with (python/lorabridge/demo_xl.py <c>LORA_NAME</c>).</summary>
    public static readonly IReadOnlyList<string> DemoXlLoraNames = ["demo_style_xl"];

    /// <summary>Builds the catalog over the settings' folders.</summary>
    public ModelSources(WorkspaceSettings settings)
    {
        Settings = settings;
        Catalog = new LoraCatalog(new CatalogOptions
        {
            WebUiDir = settings.WebUiDir,
            LoraDirs = [.. settings.LoraDirs, Path.Combine(DemoDir, "Lora")],
            DataDir = settings.DataDir,
            NotFound = settings.LoraNotFound,
        });
    }

    /// <summary>The settings in use.</summary>
    public WorkspaceSettings Settings { get; }

    /// <summary>LoRA and checkpoint catalog: A1111 folders, configured folders, the demo LoRAs.</summary>
    public LoraCatalog Catalog { get; }

    /// <summary>The demo model's folder under the data folder.</summary>
    public string DemoDir => Path.Combine(Settings.DataDir, DemoFolder);

    /// <summary>
    /// True when a built-in demo model is in use: <see cref="BuiltInCheckpoint"/> named, or no checkpoint configured
    /// and no A1111 folder with one (then the SD1 demo).
    /// </summary>
    public bool UsesDemoModel => BuiltInCheckpoint is not null
        || (Settings.Checkpoint is null && (Settings.WebUiDir is null || Catalog.Checkpoints.Count == 0));

    /// <summary>
    /// The built-in demo model named by the configured checkpoint (<see cref="DemoCheckpoints.Sd1"/> or
    /// <see cref="DemoCheckpoints.Sdxl"/>, with or without <c>.safetensors</c>), unless a file of that name exists in
    /// the working folder; null otherwise (also when the SD1 demo is used because nothing is configured).
    /// </summary>
    public string? BuiltInCheckpoint => DemoCheckpoints.Match(Settings.Checkpoint);

    /// <summary>True when the SDXL demo model <c>lorabridge-demo-xl</c> is in use.</summary>
    public bool UsesSdxlDemoModel => BuiltInCheckpoint == DemoCheckpoints.Sdxl;

    /// <summary>
    /// The image size a job gets when none is given: <see cref="DemoCheckpoints.DefaultSize"/> on a demo model,
    /// 1024×1024 on an SDXL checkpoint, 512×512 otherwise. Read from the checkpoint's keys without starting Python; a
    /// checkpoint that cannot be found or read gets 512×512 here and reports its problem when it is loaded.
    /// </summary>
    public (int Width, int Height) DefaultSize()
    {
        if (UsesDemoModel) return DemoCheckpoints.DefaultSize;
        try
        {
            return FindConfiguredCheckpoint() is { } path ? CheckpointKind.Detect(path).DefaultSize : (512, 512);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (512, 512);
        }
    }

    /// <summary>The configured checkpoint's path (a path, an A1111 name, or the A1111 folder's first), or null for the demo model.</summary>
    /// <exception cref="FileNotFoundException">A configured checkpoint that does not exist.</exception>
    public string? FindConfiguredCheckpoint()
    {
        if (BuiltInCheckpoint is not null) return null;
        if (Settings.Checkpoint is { } wanted)
        {
            if (File.Exists(wanted)) return Path.GetFullPath(wanted);
            return Catalog.FindCheckpoint(wanted)?.FilePath
                ?? throw new FileNotFoundException($"checkpoint '{wanted}' is neither a file nor a checkpoint in {string.Join(", ", Catalog.Options.EffectiveCheckpointDirs)}", wanted);
        }
        return Settings.WebUiDir is not null ? Catalog.Checkpoints.FirstOrDefault()?.FilePath : null;
    }

    /// <summary>Where the CLIP tokenizer of <paramref name="checkpointPath"/> comes from.</summary>
    /// <exception cref="TokenizerNotFoundException">None found; the message says where to get the files.</exception>
    public TokenizerLocation LocateTokenizer(string checkpointPath)
    {
        // The demo model keeps its own vocabulary in <demo>/tokenizer, beside its A1111-style model folders.
        var explicitDir = Settings.TokenizerDir ?? (UsesDemoModel ? Path.Combine(DemoDir, "tokenizer") : null);
        return new TokenizerLocator().Locate(checkpointPath, explicitDir);
    }

    /// <summary>
    /// Everything that would stop <paramref name="request"/> before it renders: settings, prompt errors, unknown
    /// LoRAs. Needs no Python, so <c>batch --dry-run</c> refuses what a real run would, and a batch checks all its jobs
    /// first (a typo in job 50 is not found after 49 renders).
    /// </summary>
    /// <returns>Problems, empty when the job can run.</returns>
    public IReadOnlyList<string> Check(GenerationRequest request)
    {
        var problems = new List<string>();
        try
        {
            GenerationEngine.ValidateRequest(request);
            // The data folder's block-weight presets, as generation uses them (issue 11).
            var plan = new A1111PromptPlanner { BlockWeightPresets = LoraBridge.Prompting.LbwPresets.Load(Settings.DataDir) }
                .Plan(request.Prompt, request.NegativePrompt, request.Steps);
            foreach (var name in plan.NetworkNames)
            {
                if (IsDemoLoraToBeCreated(name)) continue;
                try { Catalog.Resolve(name); }
                catch (LoraNotFoundException missing) { problems.Add(missing.Message); }
            }
        }
        catch (Exception ex) when (ex is ArgumentException or PromptPlanException)
        {
            problems.Add(ex.Message);
        }
        return problems;
    }

    // The demo model (and its LoRAs) is made by Python on the first real run; until then its LoRA names are valid.
    // Both demo families share the demo's Lora folder, so the check is per file, not per folder.
    private bool IsDemoLoraToBeCreated(string name) =>
        UsesDemoModel
        && (UsesSdxlDemoModel ? DemoXlLoraNames : DemoLoraNames).Contains(name, StringComparer.Ordinal)
        && !File.Exists(Path.Combine(DemoDir, "Lora", name + ".safetensors"));
}

/// <summary>The built-in demo models, made on first use in the data folder by the Python side.</summary>
public static class DemoCheckpoints
{
    /// <summary>The SD 1.x demo model, used when no checkpoint is configured.</summary>
    public const string Sd1 = "lorabridge-demo";

    /// <summary>The SDXL-architecture demo model (tiny widths, its LoRA <c>demo_style_xl</c>).</summary>
    public const string Sdxl = "lorabridge-demo-xl";

    /// <summary>
    /// Default image size on both demo models: 128×128 runs in seconds on a CPU (the SDXL demo's UNet downsamples the
    /// 16×16 latent twice, to 4×4, so it stays meaningful).
    /// </summary>
    public static readonly (int Width, int Height) DefaultSize = (128, 128);

    /// <summary>The demo name <paramref name="checkpoint"/> refers to, or null; an existing file of that name wins.</summary>
    public static string? Match(string? checkpoint)
    {
        if (checkpoint is null || File.Exists(checkpoint)) return null;
        var name = checkpoint.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? checkpoint[..^".safetensors".Length] : checkpoint;
        return name switch { Sd1 => Sd1, Sdxl => Sdxl, _ => null };
    }
}
