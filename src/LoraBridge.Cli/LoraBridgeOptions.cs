using LoraBridge.Python;

namespace LoraBridge.Cli;

/// <summary>
/// The application's settings: section <c>LoraBridge</c> of appsettings.json, <c>LORABRIDGE_…</c> environment
/// variables (<c>__</c> separates levels, e.g. <c>LORABRIDGE_PYTHON__EXECUTABLE</c>) and the command line, later
/// sources winning.
/// </summary>
public sealed class LoraBridgeOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "LoraBridge";

    /// <summary>Interpreter settings (<c>LoraBridge:Python:…</c>).</summary>
    public PythonSettings Python { get; set; } = new();

    /// <summary>An A1111 (stable-diffusion-webui) install to reuse: its <c>venv</c> and, later, its model folders (<c>--webui-dir</c>).</summary>
    public string? WebUiDir { get; set; }

    /// <summary>torch CPU threads (<c>--torch-threads</c>); unset or 0 means all cores.</summary>
    public int? TorchThreads { get; set; }

    /// <summary>Where LoraBridge keeps its own files (the venv made by <c>setup</c>, caches); default <c>~/.local/share/lorabridge</c> (<c>--data-dir</c>).</summary>
    public string? DataDir { get; set; }

    /// <summary>Default checkpoint: a name as A1111 lists it, or a path (<c>--checkpoint</c>); unset uses the A1111 folder's first checkpoint, or the built-in demo model.</summary>
    public string? Checkpoint { get; set; }

    /// <summary>Folder with the CLIP tokenizer files (<c>vocab.json</c> + <c>merges.txt</c>), overriding discovery (<c>--tokenizer</c>).</summary>
    public string? TokenizerDir { get; set; }

    /// <summary>More LoRA folders, scanned after A1111's <c>models/Lora</c> and <c>models/LyCORIS</c>.</summary>
    public List<string> LoraDirs { get; set; } = [];

    /// <summary>Textual-inversion embedding folders, read before A1111's <c>embeddings/</c> under <see cref="WebUiDir"/>.</summary>
    public List<string> EmbeddingsDirs { get; set; } = [];

    /// <summary>Where images go (<c>--out</c>); default <c>outputs/txt2img-images/DATE</c> under the working directory, as A1111 lays it out.</summary>
    public string? OutputDir { get; set; }

    /// <summary>
    /// What a prompt naming an unknown LoRA does: <c>Error</c> (default: stop and list the closest names) or
    /// <c>SkipAndNote</c> (A1111's behaviour: warn and generate without it).
    /// </summary>
    public LoraBridge.Models.LoraNotFoundBehavior LoraNotFound { get; set; }

    /// <summary><c>full</c> or <c>autocast</c> (<c>--precision</c>, A1111's option of that name); unset: autocast (fp16 with autocast on CUDA, fp32 on the CPU).</summary>
    public string? Precision { get; set; }

    /// <summary>Keep the VAE in fp32 on CUDA (<c>--no-half-vae</c>, as A1111's option).</summary>
    public bool NoHalfVae { get; set; }

    /// <summary>MiB of loaded LoRA files kept in memory between jobs of one process (batch, TUI, server); unset: 1024.</summary>
    public double? LoraCacheMiB { get; set; }

    /// <summary>The data directory with the default applied.</summary>
    public string EffectiveDataDir => string.IsNullOrWhiteSpace(DataDir)
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "lorabridge")
        : Path.GetFullPath(DataDir);

    /// <summary>Where models come from, for generation, <c>doctor</c> and <c>loras</c>; command-line values win.</summary>
    /// <param name="checkpoint">A <c>--checkpoint</c> given to the command, or null.</param>
    /// <param name="tokenizerDir">A <c>--tokenizer</c> given to the command, or null.</param>
    public LoraBridge.Engine.WorkspaceSettings ToWorkspaceSettings(string? checkpoint = null, string? tokenizerDir = null) => new()
    {
        WebUiDir = WebUiDir,
        DataDir = EffectiveDataDir,
        Checkpoint = checkpoint ?? Checkpoint,
        TokenizerDir = tokenizerDir ?? TokenizerDir,
        LoraDirs = LoraDirs,
        EmbeddingDirs = EmbeddingsDirs,
        LoraNotFound = LoraNotFound,
        Precision = Precision,
        NoHalfVae = NoHalfVae,
        LoraCacheMiB = LoraCacheMiB,
    };

    /// <summary>The output folder: <paramref name="explicitDir"/>, else <see cref="OutputDir"/>, else A1111's <c>outputs/txt2img-images/DATE</c>.</summary>
    public string EffectiveOutputDir(string? explicitDir) => Path.GetFullPath(explicitDir ?? OutputDir
        ?? Path.Combine("outputs", "txt2img-images", DateTime.Now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>The settings the Python runtime needs.</summary>
    public PythonRuntimeOptions ToRuntimeOptions() => new()
    {
        Executable = Python.Executable,
        WebUiDir = WebUiDir,
        DataDir = EffectiveDataDir,
        TorchThreads = TorchThreads,
        PackageDir = Python.PackageDir,
        SystemPython = string.IsNullOrWhiteSpace(Python.SystemPython) ? "/usr/bin/python3" : Python.SystemPython,
        NoDiscoveryCache = !Python.DiscoveryCache,
    };
}

/// <summary>Settings under <c>LoraBridge:Python</c>.</summary>
public sealed class PythonSettings
{
    /// <summary>The interpreter to use, skipping discovery (<c>--python</c>).</summary>
    public string? Executable { get; set; }

    /// <summary>Folder containing the <c>lorabridge</c> Python package; default: <c>python/</c> beside the executable.</summary>
    public string? PackageDir { get; set; }

    /// <summary>The last-resort interpreter discovery tries (default <c>/usr/bin/python3</c>; tests point it elsewhere).</summary>
    public string? SystemPython { get; set; }

    /// <summary>Keep discovery verdicts in <c>python-discovery.json</c> in the data folder (default true; false probes every start).</summary>
    public bool DiscoveryCache { get; set; } = true;
}
