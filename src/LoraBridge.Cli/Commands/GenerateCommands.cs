using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LoraBridge.Batch;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace LoraBridge.Cli.Commands;

/// <summary><c>generate</c> (one prompt), <c>batch</c> (a Scriban template of jobs) and <c>info</c> (read infotext back).</summary>
public static class GenerateCommands
{
    /// <summary>Image size used with the built-in demo model when <c>--size</c> is not given: it runs in seconds on a CPU.</summary>
    public const string DemoSize = "128x128";

    internal sealed class GenerationOptions
    {
        public readonly Option<string> Negative = new("--negative", "-n") { Description = "Negative prompt", DefaultValueFactory = _ => "" };
        public readonly Option<int> Steps = new("--steps") { Description = "Sampling steps", DefaultValueFactory = _ => 20 };
        public readonly Option<string> Sampler = new("--sampler") { Description = string.Join(", ", SamplerNames.Names.SkipLast(1)) + " or " + SamplerNames.Names[^1], DefaultValueFactory = _ => "Euler a" };
        public readonly Option<string> Schedule = new("--schedule") { Description = "Schedule type: Automatic or Karras", DefaultValueFactory = _ => "Automatic" };
        public readonly Option<double> Cfg = new("--cfg") { Description = "CFG scale", DefaultValueFactory = _ => 7.0 };
        public readonly Option<long> Seed = new("--seed") { Description = "Seed (-1: random)", DefaultValueFactory = _ => -1 };
        public readonly Option<string?> Size = new("--size") { Description = $"WIDTHxHEIGHT (default 512x512; 1024x1024 on SDXL checkpoints; {DemoSize} with the demo models)" };
        public readonly Option<int> BatchSize = new("--batch-size") { Description = "Images per sampler run", DefaultValueFactory = _ => 1 };
        public readonly Option<int> BatchCount = new("--batch-count") { Description = "Sampler runs", DefaultValueFactory = _ => 1 };
        public readonly Option<int> ClipSkip = new("--clip-skip") { Description = "1 = last CLIP layer, 2 = penultimate", DefaultValueFactory = _ => 1 };
        public readonly Option<string> RandnSource = new("--randn-source") { Description = "GPU, CPU or NV (A1111's random number source)", DefaultValueFactory = _ => "GPU" };
        public readonly Option<string?> Checkpoint = new("--checkpoint") { Description = "Checkpoint name or path (default: configured, else the demo model)" };
        public readonly Option<string?> Out = new("--out", "-o") { Description = "Output folder (default outputs/txt2img-images/DATE)" };
        public readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "Folder with the CLIP tokenizer files" };
        public readonly HiresOptions Hires = new();
        public readonly Option<string?> Precision = new("--precision") { Description = "full or autocast (A1111's --precision; default autocast: fp16 with autocast on CUDA, fp32 on the CPU)" };
        public readonly Option<bool> NoHalfVae = new("--no-half-vae") { Description = "Keep the VAE in fp32 on CUDA (A1111's --no-half-vae)" };

        public void AddTo(Command command)
        {
            // Limits checked while parsing (issue 17): a typo never reaches the model.
            OptionValidation.Range(Steps, 1, GenerationLimits.MaxSteps);
            OptionValidation.Range(BatchSize, 1, GenerationLimits.MaxBatchSize);
            OptionValidation.Range(BatchCount, 1, GenerationLimits.MaxBatchCount);
            OptionValidation.Range(ClipSkip, 1, 12);
            OptionValidation.Finite(Cfg, GenerationLimits.MaxCfg);
            foreach (var o in new Option[] { Negative, Steps, Sampler, Schedule, Cfg, Seed, Size, BatchSize, BatchCount, ClipSkip, RandnSource, Checkpoint, Out, Tokenizer, Precision, NoHalfVae })
                command.Options.Add(o);
            Hires.AddTo(command);
        }

        public WorkspaceSettings Workspace(ParseResult parse, LoraBridgeOptions o)
        {
            var settings = o.ToWorkspaceSettings(parse.GetValue(Checkpoint), parse.GetValue(Tokenizer));
            return settings with
            {
                Precision = parse.GetValue(Precision) is { } p ? CheckpointFamilies.ValidatePrecision(p, "--precision") : settings.Precision,
                NoHalfVae = parse.GetValue(NoHalfVae) || settings.NoHalfVae,
            };
        }

        public GenerationRequest Request(ParseResult parse, string prompt, LoraBridgeOptions o, (int Width, int Height) defaultSize)
        {
            var (w, h) = parse.GetValue(Size) is { } size ? ParseSize(size) : defaultSize;
            return new GenerationRequest
            {
                Prompt = prompt,
                NegativePrompt = parse.GetValue(Negative) ?? "",
                Steps = parse.GetValue(Steps),
                Sampler = parse.GetValue(Sampler)!,
                Schedule = parse.GetValue(Schedule)!,
                CfgScale = parse.GetValue(Cfg),
                Seed = parse.GetValue(Seed),
                Width = w,
                Height = h,
                BatchSize = parse.GetValue(BatchSize),
                BatchCount = parse.GetValue(BatchCount),
                ClipSkip = parse.GetValue(ClipSkip),
                RandnSource = parse.GetValue(RandnSource)!,
                OutputDir = o.EffectiveOutputDir(parse.GetValue(Out)),
                Hires = Hires.Settings(parse),
            };
        }
    }

    /// <summary>Adds <c>generate</c>, <c>batch</c> and <c>info</c>.</summary>
    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(CreateGenerate());
        root.Subcommands.Add(CreateBatch());
        root.Subcommands.Add(CreateInfo());
    }

    /// <summary>Parses <c>WIDTHxHEIGHT</c>.</summary>
    /// <exception cref="ArgumentException">Not two positive integers.</exception>
    public static (int Width, int Height) ParseSize(string size) =>
        ImageSize.Parse(size) is { Width: > 0, Height: > 0 } parsed
            ? parsed
            : throw new ArgumentException($"--size must look like 512x512, got '{size}'");

    private static Command CreateGenerate()
    {
        var prompt = new Argument<string>("prompt") { Description = "Prompt in the A1111 prompt language, e.g. \"a lighthouse <lora:demo_style:0.8>\"" };
        var options = new GenerationOptions();
        var command = new Command("generate", "Generate images from a prompt (txt2img), writing A1111-named PNGs with infotext");
        command.Arguments.Add(prompt);
        options.AddTo(command);
        command.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
            var bridge = sp.GetRequiredService<PythonBridge>();
            bridge.StartBooting(); // Python and torch load on their own thread while the C# work below runs
            if (Preflight.DataDirProblem(o.EffectiveDataDir) is { } dataProblem) return dataProblem;
            var workspace = new GenerationWorkspace(options.Workspace(parse, o), bridge);
            using var extensions = ExtensionCommands.Load(sp);
            workspace.Engine.Hooks = extensions;
            return await RunJobsAsync(workspace, [options.Request(parse, parse.GetValue(prompt)!, o, workspace.Sources.DefaultSize())], token,
                bridge: bridge);
        }));
        return command;
    }

    private static Command CreateBatch()
    {
        var file = new Argument<FileInfo>("template") { Description = "Scriban template (.sbn): one prompt per line, or job lines from the `job` helper" };
        var data = new Option<FileInfo?>("--data") { Description = "Rows for the template's `data` variable (.json array or .csv)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Render and list the jobs without generating" };
        var grid = new Option<bool>("--grid") { Description = "Compose a labelled contact sheet of the jobs' X/Y cells" };
        var options = new GenerationOptions();
        var command = new Command("batch", "Render a Scriban template into jobs and run them with one model load; writes a JSON Lines manifest");
        command.Arguments.Add(file);
        command.Options.Add(data);
        command.Options.Add(dryRun);
        command.Options.Add(grid);
        options.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var template = parse.GetValue(file)!;
            IReadOnlyList<BatchJob> jobs;
            try
            {
                var rows = parse.GetValue(data) is { } d ? BatchData.Load(d.FullName) : null;
                jobs = BatchTemplate.Render(File.ReadAllText(template.FullName), template.FullName, rows);
            }
            catch (BatchTemplateException ex)
            {
                // Invalid input (template or data): exit 2.
                await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(ex.Message, keepNewlines: true)}");
                return 2;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(ex.Message)}");
                return 1;
            }
            Console.Out.WriteLine($"{jobs.Count} job{(jobs.Count == 1 ? "" : "s")} from {template.Name}");
            if (parse.GetValue(dryRun)) return DryRun(parse, options, jobs);
            return await CliHost.RunAsync(parse, ct, async (sp, token) =>
            {
                var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
                var bridge = sp.GetRequiredService<PythonBridge>();
                bridge.StartBooting(); // Python and torch load on their own thread while the C# work below runs
                if (Preflight.DataDirProblem(o.EffectiveDataDir) is { } dataProblem) return dataProblem;
                var workspace = new GenerationWorkspace(options.Workspace(parse, o), bridge);
                using var extensions = ExtensionCommands.Load(sp);
                workspace.Engine.Hooks = extensions;
                var defaults = options.Request(parse, "", o, workspace.Sources.DefaultSize());
                var requests = jobs.Select(j => Apply(defaults, j)).ToList();
                return await RunJobsAsync(workspace, requests, token, jobs, parse.GetValue(grid), bridge);
            });
        });
        return command;
    }

    /// <summary>
    /// Lists every job with the settings it would run with and refuses what a real run would (unknown LoRA, bad
    /// settings, prompt errors), without starting Python.
    /// </summary>
    private static int DryRun(ParseResult parse, GenerationOptions options, IReadOnlyList<BatchJob> jobs)
    {
        LoraBridgeOptions o;
        using (var host = CliHost.Build(parse)) o = host.Services.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        ModelSources sources;
        GenerationRequest defaults;
        try
        {
            sources = new ModelSources(options.Workspace(parse, o)); // --precision is checked here
            defaults = options.Request(parse, "", o, sources.DefaultSize());
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
        var requests = jobs.Select(j => Apply(defaults, j)).ToList();
        for (int i = 0; i < requests.Count; i++)
            foreach (var line in BatchManifest.Describe(i + 1, jobs[i], requests[i])) Console.Out.WriteLine(line);
        bool ok = true;
        for (int i = 0; i < requests.Count; i++)
        {
            foreach (var problem in sources.Check(requests[i]))
            {
                Console.Error.WriteLine($"error: job {i + 1} (line {jobs[i].Line}): {problem}");
                ok = false;
            }
        }
        return ok ? 0 : 1;
    }

    private static GenerationRequest Apply(GenerationRequest d, BatchJob j) => d with
    {
        Prompt = j.Prompt,
        NegativePrompt = j.NegativePrompt ?? d.NegativePrompt,
        Seed = j.Seed ?? d.Seed,
        Steps = j.Steps ?? d.Steps,
        CfgScale = j.CfgScale ?? d.CfgScale,
        Sampler = j.Sampler ?? d.Sampler,
        Schedule = j.Schedule ?? d.Schedule,
        Width = j.Width ?? d.Width,
        Height = j.Height ?? d.Height,
        Img2Img = j.InitImage is { } init
            ? new Img2ImgSettings { InitImage = Path.GetFullPath(init), DenoisingStrength = j.Denoise ?? 0.75, ResizeMode = j.ResizeMode ?? "Just resize" }
            : null,
        Hires = j.Hires == false || j.InitImage is not null ? null
            : j.Hires == true || d.Hires is not null
                ? (d.Hires ?? new HiresSettings()) with
                {
                    Scale = j.HrScale ?? d.Hires?.Scale ?? 2.0,
                    Steps = j.HrSteps ?? d.Hires?.Steps ?? 0,
                    Upscaler = j.HrUpscaler ?? d.Hires?.Upscaler ?? "Latent",
                    DenoisingStrength = j.Denoise ?? d.Hires?.DenoisingStrength ?? 0.7,
                }
                : null,
    };

    internal static async Task<int> RunJobsAsync(GenerationWorkspace workspace, IReadOnlyList<GenerationRequest> requests, CancellationToken ct,
        IReadOnlyList<BatchJob>? jobs = null, bool grid = false, PythonBridge? bridge = null)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        var all = new List<(int Job, GeneratedImage Image)>();
        var patches = new Dictionary<int, PatchStatistics>();
        // A batch keeps its networks patched from one job to the next: equal networks and multipliers patch nothing.
        if (jobs is not null) workspace.Engine.KeepNetworksBetweenJobs = true;
        bool complete = false;
        // Limits, values and folders before anything starts, so a bad --out never costs a render (exit 2).
        if (Preflight.CheckLocal(workspace, requests, jobs is null ? null : i => $"job {i + 1} (line {jobs[i].Line})") is { Count: > 0 } local)
        {
            foreach (var p in local) await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(p)}");
            return 2;
        }
        // While Python boots: the checkpoint's header, tokenizer and hash; and the model load starts as soon as the
        // names are checked, overlapping the first job's C# work (errors still come in the usual order).
        workspace.StartLocalPreparation();
        workspace.LoadCheckpointEarly = true;
        try
        {
            if (bridge is not null && await Preflight.CheckNamesAsync(bridge, requests, ct) is { Count: > 0 } names)
            {
                foreach (var p in names) await Console.Error.WriteLineAsync($"error: {p}");
                return 2;
            }
            var checkpoint = await workspace.PrepareAsync(ct);
            Console.Error.WriteLine($"checkpoint: {TerminalText.Escape(checkpoint.Path)}{(workspace.UsesDemoModel ? " (built-in demo model)" : "")}");
            // After PrepareAsync, so the demo LoRAs a fresh data folder gets are there to be found.
            if (jobs is not null && !CheckJobs(workspace, requests, jobs, grid)) return 1;
            for (int i = 0; i < requests.Count; i++)
            {
                var label = requests.Count > 1 ? $"job {i + 1}/{requests.Count}" : "generating";
                var images = await RunWithProgressAsync(console, label, p => workspace.GenerateAsync(requests[i], p, ct));
                if (workspace.Engine.LastJobPatches is { } patched) patches[i] = patched;
                foreach (var w in workspace.Warnings.Distinct()) Console.Error.WriteLine($"warning: {TerminalText.Escape(w)}");
                workspace.Warnings.Clear();
                foreach (var image in images)
                {
                    Console.Out.WriteLine(TerminalText.Escape(image.Path));
                    all.Add((i, image));
                }
            }
            complete = true;
        }
        catch (Exception ex) when (ex is ArgumentException or PromptPlanException)
        {
            // Invalid input (an option value, a prompt): exit 2 as the README says.
            await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(ex.Message)}");
            return 2;
        }
        catch (Exception ex) when (ex is LoraNotFoundException or TokenizerNotFoundException or FileNotFoundException
            or PythonCallException or ModelFileException or IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(ex.Message)}");
            return 1;
        }
        finally
        {
            // Images already written stay listed, even when a later job fails or the run is cancelled.
            if (jobs is not null && all.Count > 0)
            {
                try
                {
                    WriteManifest(all, requests, jobs, patches);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"error: manifest: {TerminalText.Escape(ex.Message)}");
                }
            }
        }

        if (complete && grid && jobs is not null && all.Count > 0 && !WriteGrid(all, jobs)) return 1;
        Console.Out.WriteLine($"{requests.Count} job{(requests.Count == 1 ? "" : "s")}, {all.Count} image{(all.Count == 1 ? "" : "s")}, {workspace.Engine.CheckpointLoads} checkpoint load{(workspace.Engine.CheckpointLoads == 1 ? "" : "s")}");
        return 0;
    }

    /// <summary>Finds every job's problems before the first render; prints them with the job and template line.</summary>
    private static bool CheckJobs(GenerationWorkspace workspace, IReadOnlyList<GenerationRequest> requests, IReadOnlyList<BatchJob> jobs, bool grid)
    {
        bool ok = true;
        for (int i = 0; i < requests.Count; i++)
        {
            foreach (var problem in workspace.Check(requests[i]))
            {
                Console.Error.WriteLine($"error: job {i + 1} (line {jobs[i].Line}): {TerminalText.Escape(problem)}");
                ok = false;
            }
        }
        var sizes = requests.Where((_, i) => jobs[i].X is not null || jobs[i].Y is not null).Select(r => (r.Width, r.Height)).Distinct().ToList();
        if (grid && sizes.Count > 1)
        {
            Console.Error.WriteLine($"error: --grid needs one image size for every cell, the jobs have {string.Join(", ", sizes.Select(s => $"{s.Width}x{s.Height}"))}");
            ok = false;
        }
        return ok;
    }

    private static void WriteManifest(List<(int Job, GeneratedImage Image)> all, IReadOnlyList<GenerationRequest> requests, IReadOnlyList<BatchJob> jobs,
        IReadOnlyDictionary<int, PatchStatistics> patches)
    {
        var outDir = Path.GetDirectoryName(all[0].Image.Path)!;
        // A new file every time: two batches finishing in the same second get -1, -2, …; a planted link is never followed.
        var lines = all.Select(r => WithPatches(BatchManifest.Line(r.Job + 1, jobs[r.Job], requests[r.Job], r.Image.Seed, r.Image.Path),
            patches.TryGetValue(r.Job, out var p) ? p : null) + "\n");
        var manifest = AtomicFile.CreateUnique(outDir, UniqueName("batch", "jsonl"), System.Text.Encoding.UTF8.GetBytes(string.Concat(lines)));
        Console.Out.WriteLine($"manifest: {manifest}");
    }

    // Per-job weight patching (issue 11): appended to the manifest line when the engine counted it.
    private static string WithPatches(string line, PatchStatistics? patches)
    {
        if (patches is null) return line;
        var node = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
        node["patch_ms"] = Math.Round(patches.PatchMs, 3);
        node["layers_patched"] = patches.LayersPatched;
        return node.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }); // as BatchManifest writes: readable <lora:…>
    }

    private static bool WriteGrid(List<(int Job, GeneratedImage Image)> all, IReadOnlyList<BatchJob> jobs)
    {
        var cells = all.Where(r => jobs[r.Job].X is not null || jobs[r.Job].Y is not null)
            .GroupBy(r => r.Job).Select(g => g.First())
            .Select(r => new GridCell(jobs[r.Job].X ?? "", jobs[r.Job].Y ?? "", File.ReadAllBytes(r.Image.Path))).ToList();
        if (cells.Count == 0)
        {
            Console.Error.WriteLine("warning: --grid: no job has x or y labels (use the xy helper and job {x: …, y: …})");
            return true;
        }
        try
        {
            var (png, layout) = GridComposer.Compose(cells);
            var gridPath = AtomicFile.CreateUnique(Path.GetDirectoryName(all[0].Image.Path)!, UniqueName("grid", "png"), png);
            Console.Out.WriteLine($"grid: {gridPath} ({layout.Columns.Count}x{layout.Rows.Count} cells, {layout.Width}x{layout.Height} px)");
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: --grid: {TerminalText.Escape(ex.Message)}");
            return false;
        }
    }

    // prefix-yyyyMMdd-HHmmss.ext, then prefix-yyyyMMdd-HHmmss-1.ext, … for AtomicFile.CreateUnique.
    private static Func<int, string> UniqueName(string prefix, string extension)
    {
        var stamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        return attempt => attempt == 0 ? $"{prefix}-{stamp}.{extension}" : $"{prefix}-{stamp}-{attempt}.{extension}";
    }

    private static async Task<IReadOnlyList<GeneratedImage>> RunWithProgressAsync(IAnsiConsole console, string label,
        Func<IProgress<GenerationProgress>, Task<IReadOnlyList<GeneratedImage>>> run)
    {
        if (Console.IsErrorRedirected)
        {
            // Not a terminal: plain lines a log can keep.
            return await run(new Progress<GenerationProgress>(p => Console.Error.WriteLine(Describe(label, p))));
        }
        IReadOnlyList<GeneratedImage> result = [];
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(label);
                result = await run(new SynchronousProgress(p =>
                {
                    task.MaxValue = p.TotalSteps * p.BatchCount;
                    task.Value = p.Batch * p.TotalSteps + p.Step;
                    task.Description = Describe(label, p);
                }));
            });
        return result;
    }

    private static string Describe(string label, GenerationProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"{label}: batch {p.Batch + 1}/{p.BatchCount} step {p.Step}/{p.TotalSteps} ({p.StepsPerSecond:0.0} it/s, ETA {p.Remaining.TotalSeconds:0}s)");

    // Progress<T> posts to the thread pool, so its lines could arrive after the job's output; report inline instead.
    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    // A1111 reads parameters into a dict, so a repeated key keeps its last value.
    private static Dictionary<string, string> LastWins(IEnumerable<KeyValuePair<string, string>> pairs)
    {
        var d = new Dictionary<string, string>();
        foreach (var (k, v) in pairs) d[k] = v;
        return d;
    }

    private static Command CreateInfo()
    {
        var image = new Argument<FileInfo>("image") { Description = "PNG written by LoraBridge or A1111" };
        var json = new Option<bool>("--json") { Description = "Write JSON" };
        var command = new Command("info", "Show the generation parameters stored in a PNG (A1111's PNG Info)");
        command.Arguments.Add(image);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var path = parse.GetValue(image)!.FullName;
            IReadOnlyDictionary<string, string> chunks;
            try
            {
                chunks = PngText.Read(path);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {TerminalText.Escape(ex.Message)}");
                return 1;
            }
            if (!chunks.TryGetValue("parameters", out var text))
            {
                Console.Error.WriteLine($"error: {path} has no 'parameters' text (not written by A1111 or LoraBridge)");
                return 1;
            }
            var info = Infotext.Parse(text);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    prompt = info.Prompt,
                    negative_prompt = info.NegativePrompt,
                    parameters = LastWins(info.Parameters),
                }, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
            {
                // PNG text comes from anywhere: control characters are escaped, never sent to the terminal raw.
                Console.Out.WriteLine($"Prompt: {TerminalText.Escape(info.Prompt, keepNewlines: true)}");
                if (info.NegativePrompt.Length > 0) Console.Out.WriteLine($"Negative prompt: {TerminalText.Escape(info.NegativePrompt, keepNewlines: true)}");
                foreach (var (k, v) in info.Parameters) Console.Out.WriteLine($"{TerminalText.Escape(k)}: {TerminalText.Escape(v)}");
            }
            return 0;
        });
        return command;
    }
}
