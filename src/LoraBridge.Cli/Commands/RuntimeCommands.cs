using System.CommandLine;
using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary><c>doctor</c> (what runtime would be used and what is missing) and <c>setup</c> (install what is missing).</summary>
public static class RuntimeCommands
{
    /// <summary>Below this a 1024³ float32 matmul suggests torch is on the reference BLAS (≈6 GFLOP/s; OpenBLAS ≈80 on 2 cores).</summary>
    public const double SlowBlasGFlops = 15;

    /// <summary>Adds <c>doctor</c> and <c>setup</c>.</summary>
    public static void Register(RootCommand root)
    {
        var doctor = new Command("doctor", "Find the Python runtime, boot it, and report torch, device, BLAS speed and anything missing (exit 1 when unusable)");
        doctor.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, DoctorAsync));
        root.Add(doctor);

        var dryRun = new Option<bool>("--dry-run") { Description = "Only print what would be installed and the commands" };
        var setup = new Command("setup", "Install what is missing: apt packages on Debian/Ubuntu when root, else pip into a venv under the data folder when a package index answers, else print the commands");
        setup.Add(dryRun);
        setup.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, (sp, c) => SetupAsync(sp, parse.GetValue(dryRun), c)));
        root.Add(setup);
    }

    private static async Task<int> DoctorAsync(IServiceProvider sp, CancellationToken ct)
    {
        var options = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        // doctor never trusts the cache: it probes every candidate and says whether the stored verdicts were current.
        var discovery = sp.GetRequiredService<PythonDiscovery>();
        var report = await discovery.ProbeAfreshAsync(ct);
        var output = Console.Out;
        output.WriteLine("Python candidates:");
        output.Write(report.Describe());
        output.WriteLine(DiscoveryCacheLine(discovery, report));

        var problems = new List<(string Problem, IReadOnlyList<string> Commands)>();
        bool usable = false;
        if (report.Winner is { Probe: { } probe } winner)
        {
            output.WriteLine($"runtime:  {winner.Path}");
            output.WriteLine($"version:  Python {probe.Version}");
            output.WriteLine($"source:   {DiscoveryReport.SourceLabel(winner.Source)}");
            output.WriteLine($"libpython: {probe.LibPython}");
            if (probe.IsVenv) output.WriteLine($"venv:     {probe.Prefix} (base {probe.BasePrefix})");
            try
            {
                var bridge = sp.GetRequiredService<PythonBridge>();
                var info = await bridge.GetRuntimeInfoAsync(ct);
                output.WriteLine($"torch:    {info.TorchVersion} ({info.TorchThreads} CPU threads, OpenMP wait policy {(info.OmpWaitPolicyEnv.Length > 0 ? info.OmpWaitPolicyEnv : "default")})");
                output.WriteLine($"device:   {(info.Device == "cuda" ? $"CUDA: {info.DeviceName}" : "CPU (CUDA not available)")}");
                output.WriteLine($"numpy:    {(info.NumpyVersion.Length > 0 ? info.NumpyVersion : "missing")}");
                output.WriteLine($"pillow:   {(info.PillowVersion.Length > 0 ? info.PillowVersion : "missing")}");
                var blas = await bridge.CheckBlasAsync(1024, 3, ct);
                bool reference = info.BlasLibrary.Contains("/blas/", StringComparison.Ordinal) || blas.GFlops < SlowBlasGFlops;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"BLAS:     {(info.BlasLibrary.Length > 0 ? info.BlasLibrary : "built into torch")}; 1024³ float32 matmul {blas.GFlops:0.0} GFLOP/s ({blas.Seconds * 1000:0.0} ms)"));
                usable = true;
                if (reference)
                    problems.Add(($"warning: torch looks like it runs on the reference BLAS ({blas.GFlops:0.0} GFLOP/s); LoRA merges and sampling will be slow",
                        SystemFacts.IsDebianLike ? [$"{SystemFacts.Sudo}apt-get install -y libopenblas0-openmp"] : ["install an optimized BLAS (OpenBLAS or MKL) for torch"]));
                if (info.NumpyVersion.Length == 0) problems.Add(("numpy is missing", InstallCommands(probe, "python3-numpy", "numpy")));
                if (info.PillowVersion.Length == 0) problems.Add(("pillow is missing", InstallCommands(probe, "python3-pil", "pillow")));
            }
            catch (PythonRuntimeUnavailableException ex)
            {
                problems.Add(($"the runtime did not start: {ex.Message}", []));
            }
        }
        else
        {
            problems.AddRange(DescribeNoRuntime(report, options));
        }

        ReportModel(output, options, problems);

        output.WriteLine(problems.Count == 0 ? "missing:  nothing" : "missing:");
        foreach (var (problem, commands) in problems)
        {
            output.WriteLine($"  - {problem}");
            foreach (var c in commands) output.WriteLine($"      {c}");
        }
        output.WriteLine(usable ? "status:   usable" : "status:   NOT usable (fix the items above, or run `lorabridge setup`)");
        return usable ? 0 : 1;
    }

    /// <summary>What <c>doctor</c> says about the discovery cache: never used by doctor, and whether it was current.</summary>
    private static string DiscoveryCacheLine(PythonDiscovery discovery, DiscoveryReport report)
    {
        if (discovery.Cache is not { } cache) return "cache:    off (every command probes the candidates)";
        var state = cache.LoadProblem is { } problem ? problem
            : report.CacheMisses.Count == 0 ? "its verdicts matched these probes"
            : "out of date: " + string.Join("; ", report.CacheMisses.Select(m => $"{m.Key}: {m.Value}"));
        return $"cache:    not used (doctor probes afresh); {cache.File}: {state}; rewritten";
    }

    /// <summary>Which checkpoint generation would use and which CLIP tokenizer files belong to it.</summary>
    private static void ReportModel(TextWriter output, LoraBridgeOptions options, List<(string Problem, IReadOnlyList<string> Commands)> problems)
    {
        var sources = new ModelSources(options.ToWorkspaceSettings());
        ModelFileReport.Write(output, sources.Catalog);
        try
        {
            var checkpoint = sources.FindConfiguredCheckpoint();
            if (checkpoint is null)
            {
                output.WriteLine($"model:    built-in demo model {sources.BuiltInCheckpoint ?? DemoCheckpoints.Sd1} ({sources.DemoDir}, created on first use)");
                output.WriteLine($"tokenizer: the demo model's own vocabulary ({Path.Combine(sources.DemoDir, "tokenizer")})");
                return;
            }
            output.WriteLine($"model:    {checkpoint}");
            var kind = CheckpointKind.Detect(checkpoint);
            output.WriteLine($"family:   {kind.Detail}");
            if (!kind.Supported && kind.Family != BaseFamily.Unknown) problems.Add(($"{checkpoint}: {kind.Detail}", []));
            var tokenizer = sources.LocateTokenizer(checkpoint);
            output.WriteLine($"tokenizer: {tokenizer.Directory} ({tokenizer.Reason})");
        }
        catch (Exception ex) when (ex is FileNotFoundException or TokenizerNotFoundException or ModelFileException)
        {
            problems.Add((ex.Message, []));
        }
    }

    private static IReadOnlyList<string> InstallCommands(PythonProbe python, string debianPackage, string pipRequirement)
    {
        var pin = TryLoadLock()?.PipRequirements.FirstOrDefault(r => r.StartsWith(pipRequirement + "==", StringComparison.OrdinalIgnoreCase)) ?? pipRequirement;
        var list = new List<string>();
        if (!python.IsVenv && python.Prefix == "/usr" && SystemFacts.IsDebianLike) list.Add($"{SystemFacts.Sudo}apt-get install -y {debianPackage}");
        list.Add($"{python.Executable} -m pip install '{pin}'");
        return list;
    }

    private static RequirementsLock? TryLoadLock()
    {
        try { return RequirementsLock.Load(RequirementsLock.DefaultPath); }
        catch (InvalidDataException) { return null; }
    }

    /// <summary>What is missing when no candidate is usable, each with the commands that fix it.</summary>
    private static IEnumerable<(string, IReadOnlyList<string>)> DescribeNoRuntime(DiscoveryReport report, LoraBridgeOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.Python.Executable))
        {
            var c = report.Candidates[0];
            var fix = new List<string>();
            if (c.Probe is { } p && p.LibPython is not null && PythonDiscovery.Reject(p) is { } r && r.StartsWith("torch", StringComparison.Ordinal))
                fix.Add($"{p.Executable} -m pip install -r {RequirementsLock.DefaultPath}");
            fix.Add("or point --python / LoraBridge:Python:Executable at a Python 3.10–3.13 with a shared libpython and torch, or remove it to let discovery choose");
            yield return ($"the configured Python {c.Path} is not usable: {c.Reason}", fix);
            yield break;
        }
        var system = report.Candidates.FirstOrDefault(c => c.Source == PythonSource.System)?.Probe;
        var lockFile = TryLoadLock();
        var commands = new List<string>();
        if (SystemFacts.IsDebianLike && lockFile is not null)
            commands.Add($"{SystemFacts.Sudo}apt-get install -y {string.Join(' ', lockFile.AptPackagesFor(system?.Version))}");
        var venv = Path.Combine(options.EffectiveDataDir, "venv");
        commands.Add($"python3 -m venv {venv} && {venv}/bin/python -m pip install -r {RequirementsLock.DefaultPath}");
        commands.Add("or: lorabridge setup");
        yield return ("no Python 3.10–3.13 with a shared libpython and torch was found", commands);
    }

    private static async Task<int> SetupAsync(IServiceProvider sp, bool dryRun, CancellationToken ct)
    {
        var options = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        var runtimeOptions = sp.GetRequiredService<PythonRuntimeOptions>();
        var lockFile = RequirementsLock.Load(RequirementsLock.DefaultPath);
        var output = Console.Out;
        var report = await sp.GetRequiredService<PythonDiscovery>().GetReportAsync(ct);
        string Mark(string cmd) => dryRun ? $"would run: {cmd}" : $"running: {cmd}";

        // 1. System packages: the Debian route installs everything at once, including libpython and an optimized BLAS.
        if (SystemFacts.IsDebianLike && string.IsNullOrWhiteSpace(options.Python.Executable))
        {
            var system = report.Candidates.FirstOrDefault(c => c.Source == PythonSource.System)?.Probe;
            var missing = SystemFacts.MissingDebianPackages(lockFile.AptPackagesFor(system?.Version));
            if (missing.Count == 0)
            {
                output.WriteLine($"apt: all of {string.Join(' ', lockFile.AptPackagesFor(system?.Version))} are installed");
            }
            else if (SystemFacts.IsRoot)
            {
                output.WriteLine(Mark("apt-get update"));
                output.WriteLine(Mark($"apt-get install -y {string.Join(' ', missing)}"));
                if (!dryRun)
                {
                    if (await SystemFacts.RunAttachedAsync("apt-get", ["update", "-qq"], ct) != 0 ||
                        await SystemFacts.RunAttachedAsync("apt-get", ["install", "-y", .. missing], ct) != 0)
                    {
                        Console.Error.WriteLine("error: apt-get failed; see its output above");
                        return 1;
                    }
                    report = await new PythonDiscovery(runtimeOptions).DiscoverAsync(ct);
                }
            }
            else
            {
                output.WriteLine($"apt: missing {string.Join(' ', missing)}; not root, so run:");
                output.WriteLine($"  sudo apt-get install -y {string.Join(' ', missing)}");
            }
        }

        // 2. No usable interpreter yet: pip, into the configured interpreter or a venv under the data folder.
        if (report.Winner is null)
        {
            var commands = PipPlan(report, options, lockFile);
            if (commands is null)
            {
                output.WriteLine("No Python 3.10–3.13 with a shared libpython was found to install into. Install one first " +
                                 "(Debian/Ubuntu: apt-get install python3 libpython3.11; pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.11).");
                return 1;
            }
            var (answers, url) = dryRun ? (false, "") : await SystemFacts.PackageIndexAnswersAsync(ct);
            if (!answers || dryRun)
            {
                output.WriteLine(dryRun ? "pip plan:" : $"No package index answered at {url}; run these where one does:");
                foreach (var (exe, args) in commands) output.WriteLine($"  {exe} {string.Join(' ', args)}");
                if (dryRun) output.WriteLine("(dry run: nothing was changed)");
                return 1;
            }
            foreach (var (exe, args) in commands)
            {
                output.WriteLine(Mark($"{exe} {string.Join(' ', args)}"));
                if (await SystemFacts.RunAttachedAsync(exe, args, ct) != 0)
                {
                    Console.Error.WriteLine($"error: {exe} failed; see its output above");
                    return 1;
                }
            }
            report = await new PythonDiscovery(runtimeOptions).DiscoverAsync(ct);
        }

        if (report.Winner is { } w)
        {
            output.WriteLine($"ready: {w.Path} (Python {w.Probe!.Version}, torch {w.Probe.TorchVersion}); run `lorabridge doctor` for the full report");
            return 0;
        }
        output.WriteLine("still no usable Python:");
        output.Write(report.Describe());
        return 1;
    }

    /// <summary>pip commands that would give a usable interpreter, or null when there is nothing to build on.</summary>
    private static List<(string Exe, string[] Args)>? PipPlan(DiscoveryReport report, LoraBridgeOptions options, RequirementsLock lockFile)
    {
        // Usable once torch is installed: supported version with a shared libpython.
        static bool Embeddable(PythonProbe? p) =>
            p?.LibPython is not null && (PythonDiscovery.Reject(p) is not { } r || r.StartsWith("torch", StringComparison.Ordinal));
        var probed = report.Candidates.Where(c => Embeddable(c.Probe)).Select(c => c.Probe!).ToList();
        if (!string.IsNullOrWhiteSpace(options.Python.Executable))
        {
            // The user chose this interpreter: install into it rather than somewhere they did not ask for.
            return probed.Count == 0 ? null : [(probed[0].Executable, ["-m", "pip", "install", "-r", lockFile.Path])];
        }
        var baseInterpreter = probed.FirstOrDefault(p => !p.IsVenv) ?? probed.FirstOrDefault();
        if (baseInterpreter is null) return null;
        var venv = Path.Combine(options.EffectiveDataDir, "venv");
        return
        [
            (baseInterpreter.Executable, ["-m", "venv", venv]),
            (Path.Combine(venv, "bin", "python"), ["-m", "pip", "install", "-r", lockFile.Path]),
        ];
    }
}
