using System.Diagnostics;
using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Tui;

/// <summary>Where a generation job stands.</summary>
public enum JobState
{
    /// <summary>No job; Generate is possible.</summary>
    Idle,
    /// <summary>A job is sampling (or loading the model).</summary>
    Running,
    /// <summary>Cancel was requested; the engine is stopping and restoring the LoRA weights.</summary>
    Cancelling,
}

/// <summary>What a generator returns: the images and the warnings the workspace gathered for the job.</summary>
/// <param name="Images">Written images.</param>
/// <param name="Warnings">Warnings such as a LoRA made for another model family.</param>
public sealed record JobResult(IReadOnlyList<GeneratedImage> Images, IReadOnlyList<string> Warnings);

/// <summary>Runs one request; <see cref="WorkspaceGenerator"/> is the real one.</summary>
public delegate Task<JobResult> Generator(GenerationRequest request, IProgress<GenerationProgress> progress, CancellationToken ct);

/// <summary>
/// The state and logic of the TUI without any Terminal.Gui type: the form's field texts, their validation into a
/// <see cref="GenerationRequest"/>, the plan panel's text and the job state machine (idle → running → cancelling → idle).
/// Not thread-safe: every member is meant to be used on the UI thread; <see cref="GenerateAsync"/> marshals its
/// updates there through the <c>post</c> callback it is given.
/// </summary>
public sealed partial class GeneratorViewModel
{
    /// <summary>
    /// Samplers the engine implements (<see cref="SamplerNames"/>), in the order the form offers them: A1111's default
    /// "Euler a" first.
    /// </summary>
    public static readonly IReadOnlyList<string> Samplers = ["Euler a", .. SamplerNames.Names.Where(n => n != "Euler a")];

    /// <summary>Schedule types the engine implements (<c>SCHEDULERS</c> in python/lorabridge/schedules.py).</summary>
    public static readonly IReadOnlyList<string> Schedules = ["Automatic", "Uniform", "Karras", "Exponential"];

    private CancellationTokenSource? _cts;
    private Task _work = Task.CompletedTask;
    private readonly List<GeneratedImage> _images = [];
    private readonly Stopwatch _clock = new();

    /// <summary>Creates the model with defaults for the given output folder and image size.</summary>
    public GeneratorViewModel(string outputDir, string defaultSize = "512x512")
    {
        OutputDir = outputDir;
        SizeText = defaultSize;
    }

    /// <summary>Positive prompt (A1111 prompt language).</summary>
    public string Prompt { get; set; } = "";
    /// <summary>Negative prompt.</summary>
    public string NegativePrompt { get; set; } = "";
    /// <summary>Steps field text.</summary>
    public string StepsText { get; set; } = "20";
    /// <summary>CFG scale field text.</summary>
    public string CfgText { get; set; } = "7";
    /// <summary>Seed field text (-1: random).</summary>
    public string SeedText { get; set; } = "-1";
    /// <summary>Size field text, <c>WIDTHxHEIGHT</c>.</summary>
    public string SizeText { get; set; }
    /// <summary>Sampler field text; one of <see cref="Samplers"/>.</summary>
    public string Sampler { get; set; } = "Euler a";
    /// <summary>Schedule type; one of <see cref="Schedules"/>.</summary>
    public string Schedule { get; set; } = "Automatic";
    /// <summary>Batch count field text (sampler runs).</summary>
    public string BatchCountText { get; set; } = "1";
    /// <summary>Batch size field text (images per run).</summary>
    public string BatchSizeText { get; set; } = "1";
    /// <summary>Clip skip field text (1: the last CLIP layer, as A1111).</summary>
    public string ClipSkipText { get; set; } = "1";
    /// <summary>Folder the images are written to.</summary>
    public string OutputDir { get; }

    /// <summary>A1111's 🎲: the next job draws a random seed.</summary>
    public void RandomSeed() => SeedText = "-1";

    /// <summary>A1111's ♻: the seed of the last image written in this session; false (nothing changed) when there is none.</summary>
    public bool ReuseSeed()
    {
        if (_images.Count == 0) return false;
        SeedText = _images[^1].Seed.ToString(CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>The form as saved between sessions.</summary>
    public TuiSettings ToSettings() => new()
    {
        Prompt = Prompt, NegativePrompt = NegativePrompt, Steps = StepsText, Cfg = CfgText, Seed = SeedText, Size = SizeText,
        Sampler = Sampler, Schedule = Schedule, BatchCount = BatchCountText, BatchSize = BatchSizeText, ClipSkip = ClipSkipText,
        Checkpoint = Checkpoint, HiresUpscaler = HiresUpscaler, HiresScale = HiresScaleText, HiresSteps = HiresStepsText, HiresDenoise = HiresDenoiseText,
        PreviewMethod = LivePreviewMethod,
    };

    /// <summary>Loads saved settings into the form (a missing size keeps the checkpoint's default).</summary>
    public void Apply(TuiSettings s)
    {
        Prompt = s.Prompt;
        NegativePrompt = s.NegativePrompt;
        StepsText = s.Steps;
        CfgText = s.Cfg;
        SeedText = s.Seed;
        if (!string.IsNullOrWhiteSpace(s.Size)) SizeText = s.Size;
        Sampler = s.Sampler;
        Schedule = s.Schedule;
        BatchCountText = s.BatchCount;
        BatchSizeText = s.BatchSize;
        ClipSkipText = s.ClipSkip;
        if (!string.IsNullOrWhiteSpace(s.Checkpoint)) Checkpoint = s.Checkpoint;
        HiresUpscaler = s.HiresUpscaler;
        HiresScaleText = s.HiresScale;
        HiresStepsText = s.HiresSteps;
        HiresDenoiseText = s.HiresDenoise;
        LivePreviewMethod = s.PreviewMethod;
    }

    /// <summary>Job state.</summary>
    public JobState State { get; private set; } = JobState.Idle;
    /// <summary>0..1 progress of the running job over all batches.</summary>
    public double ProgressFraction { get; private set; }
    /// <summary>One-line status for the status line.</summary>
    public string StatusText { get; private set; } = "ready";
    /// <summary>The image panel's content: the last image written, a selected history image, or the live preview.</summary>
    public PreviewModel Preview { get; } = new();

    /// <summary>Every image written in this session, oldest first.</summary>
    public IReadOnlyList<GeneratedImage> Images => _images;

    /// <summary>Raised after a job changes <see cref="State"/>, progress, status or <see cref="Images"/>.</summary>
    public event Action? Changed;

    /// <summary>The steps field as a number for the plan panel, or null when it is not a positive integer.</summary>
    public int? PlanSteps => int.TryParse(StepsText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s >= 1 ? s : null;

    /// <summary>The CLIP chunker behind the token counter; null until the tokenizer is found (the counter shows "?").</summary>
    public PromptChunker? Chunker { get; set; }

    /// <summary>A1111's token counter for the prompt ("n/75"), or "?/75" while no tokenizer is known.</summary>
    public string TokenText
    {
        get
        {
            if (Chunker is null) return "?/75";
            return TokenCounter.Count(Chunker, PromptPlan.Create(Prompt, PlanSteps ?? 1)).ToString();
        }
    }

    /// <summary>
    /// The plan panel's text for the current prompt and steps; field problems are shown instead of a plan. Texts wrap
    /// at <paramref name="textWidth"/>, error messages at <paramref name="width"/> (0: no wrapping).
    /// </summary>
    public string PlanText(int textWidth = 40, int width = 0)
    {
        if (PlanSteps is not { } steps) return $"steps: '{StepsText}' is not a positive whole number";
        var text = PromptText.RenderPlan(PromptPlan.Create(Prompt, steps), textWidth, width);
        var negative = Scheduler.Schedule(NegativePrompt, new ScheduleOptions(steps));
        if (!negative.IsOk) text = "error: " + PromptText.DescribeError(NegativePrompt, negative.Error!, "negative prompt", width) + "\n" + text;
        return text;
    }

    /// <summary>
    /// Validates every field and the prompts (as the engine's planner would) and builds the request.
    /// </summary>
    /// <returns>The request, or null with one message per problem, each naming its field (and line/column for prompts).</returns>
    public (GenerationRequest? Request, IReadOnlyList<string> Errors) BuildRequest()
    {
        var errors = new List<string>();
        var steps = PlanSteps;
        if (steps is null) errors.Add($"steps: '{StepsText}' is not a positive whole number");
        else if (steps > 1000) errors.Add($"steps: {steps} is more than 1000");
        if (!double.TryParse(CfgText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var cfg) || !double.IsFinite(cfg) || cfg < 0)
            errors.Add($"cfg: '{CfgText}' is not a number ≥ 0");
        if (!long.TryParse(SeedText.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seed) || seed < -1)
            errors.Add($"seed: '{SeedText}' is not -1 (random) or a whole number ≥ 0");
        var size = ParseSize(SizeText);
        if (size is null) errors.Add($"size: '{SizeText}' is not WIDTHxHEIGHT with both multiples of 8, e.g. 512x512");
        var sampler = Samplers.FirstOrDefault(s => string.Equals(s, Sampler.Trim(), StringComparison.OrdinalIgnoreCase));
        if (sampler is null) errors.Add($"sampler: '{Sampler}' is not one of {string.Join(", ", Samplers)}");
        var schedule = Schedules.FirstOrDefault(s => string.Equals(s, Schedule.Trim(), StringComparison.OrdinalIgnoreCase));
        if (schedule is null) errors.Add($"schedule: '{Schedule}' is not one of {string.Join(", ", Schedules)}");
        var batchCount = Whole(BatchCountText, 1, 100);
        if (batchCount is null) errors.Add($"batch count: '{BatchCountText}' is not a whole number from 1 to 100");
        var batchSize = Whole(BatchSizeText, 1, 8);
        if (batchSize is null) errors.Add($"batch size: '{BatchSizeText}' is not a whole number from 1 to 8");
        var clipSkip = Whole(ClipSkipText, 1, 12);
        if (clipSkip is null) errors.Add($"clip skip: '{ClipSkipText}' is not a whole number from 1 to 12");
        if (steps is { } n)
        {
            var plan = PromptPlan.Create(Prompt, n);
            errors.AddRange(plan.Errors.Select(e => PromptText.DescribeError(Prompt, PromptCaret.InPrompt(plan, e)).Split('\n')[0]));
            var negative = Scheduler.Schedule(NegativePrompt, new ScheduleOptions(n));
            if (!negative.IsOk) errors.Add(PromptText.DescribeError(NegativePrompt, negative.Error!, "negative prompt").Split('\n')[0]);
        }
        var hires = HiresFromForm(errors);
        if (ParsePreviewMethod(LivePreviewMethod) is null)
            errors.Add($"live preview: '{LivePreviewMethod}' is not one of {string.Join(", ", PreviewMethods)}");
        if (errors.Count > 0) return (null, errors);
        return (new GenerationRequest
        {
            Hires = hires,
            Prompt = Prompt,
            NegativePrompt = NegativePrompt,
            Steps = steps!.Value,
            CfgScale = cfg,
            Seed = seed,
            Width = size!.Value.Width,
            Height = size.Value.Height,
            Sampler = sampler!,
            Schedule = schedule!,
            BatchCount = batchCount!.Value,
            BatchSize = batchSize!.Value,
            ClipSkip = clipSkip!.Value,
            OutputDir = OutputDir,
        }, errors);
    }

    private static int? Whole(string text, int min, int max) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v : null;

    /// <summary>Parses <c>WIDTHxHEIGHT</c> with both sides positive multiples of 8 (the VAE's factor); null otherwise.</summary>
    public static (int Width, int Height)? ParseSize(string text) =>
        ImageSize.Parse(text) is { Width: > 0, Height: > 0 } s && s.Width % 8 == 0 && s.Height % 8 == 0 ? (s.Width, s.Height) : null;

    /// <summary>
    /// Starts a job when idle and the form is valid, runs <paramref name="generate"/> on the thread pool and applies its
    /// progress and outcome through <paramref name="post"/> (the UI's dispatcher). Failures end up in
    /// <see cref="StatusText"/>, never as exceptions: the UI must survive a failed job.
    /// </summary>
    /// <returns>False (with the reason in <see cref="StatusText"/>) when no job was started; otherwise true once the job has ended.</returns>
    public Task<bool> GenerateAsync(Generator generate, Action<Action> post)
    {
        if (State != JobState.Idle) return Refuse("a job is already running (Esc cancels it)");
        var (request, errors) = BuildRequest();
        if (request is null) return Refuse("cannot generate: " + string.Join("; ", errors));
        return RunAsync("starting (the first job loads the model)…", (progress, ct) => generate(request, progress, ct), Complete, post);
    }

    /// <summary>
    /// Runs the workspace's preparation (finding the checkpoint, creating the demo model and its LoRAs on first use) as a
    /// job, so that Generate waits for it and the LoRA list can be reloaded when it ends.
    /// </summary>
    /// <param name="prepare">Returns a description of the checkpoint in use.</param>
    /// <param name="post">The UI's dispatcher.</param>
    /// <returns>False when a job was already running.</returns>
    public Task<bool> PrepareAsync(Func<CancellationToken, Task<string>> prepare, Action<Action> post)
    {
        if (State != JobState.Idle) return Refuse("a job is already running (Esc cancels it)");
        return RunAsync("loading: starting Python and finding the checkpoint (the first start takes a few seconds)…", (_, ct) => prepare(ct), name => End("ready: " + name), post);
    }

    private Task<bool> Refuse(string status)
    {
        StatusText = status;
        Changed?.Invoke();
        return Task.FromResult(false);
    }

    private async Task<bool> RunAsync<T>(string startStatus, Func<IProgress<GenerationProgress>, CancellationToken, Task<T>> work,
        Action<T> complete, Action<Action> post)
    {
        var cts = _cts = new CancellationTokenSource();
        // Read by the generator on the job's thread; written only here, before the job starts.
        JobCheckpoint = Checkpoint;
        JobPreviewMethod = ParsePreviewMethod(LivePreviewMethod) ?? LoraBridge.Python.PreviewMethod.ApproxCheap;
        State = JobState.Running;
        ProgressFraction = 0;
        StatusText = startStatus;
        _clock.Restart();
        Changed?.Invoke();

        var progress = new CallbackProgress(p => post(() => Report(cts, p)), (image, step, total, taesd) => post(() => ShowLive(cts, image, step, total, taesd)));
        Action finish;
        try
        {
            var running = Task.Run(() => work(progress, cts.Token));
            _work = running;
            var result = await running.ConfigureAwait(false);
            finish = () => complete(result);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            finish = () => { ProgressFraction = 0; End($"cancelled after {Elapsed()}"); };
        }
        // Any failure (prompt, missing LoRA, Python) is shown on the status line; the session goes on.
        catch (Exception ex)
        {
            var message = ex.Message;
            finish = () => { ProgressFraction = 0; End("error: " + message); };
        }
        post(() =>
        {
            finish();
            cts.Dispose();
            _cts = null;
        });
        return true;
    }

    /// <summary>Requests cancellation of the running job; false when there is none (or it is already cancelling).</summary>
    public bool Cancel()
    {
        if (State != JobState.Running || _cts is null) return false;
        State = JobState.Cancelling;
        StatusText = "cancelling… (the engine restores the LoRA weights)";
        _cts.Cancel();
        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// Waits until the current job's work has returned (its outcome may still be queued for the UI). The UI calls it on
    /// exit after <see cref="Cancel"/>, so that Python is not shut down under a running sampler.
    /// </summary>
    /// <returns>False when the work was still running after <paramref name="timeout"/>.</returns>
    public bool WaitForJob(TimeSpan timeout)
    {
        try
        {
            return _work.Wait(timeout);
        }
        catch (AggregateException)
        {
            return true;   // the job failed; its error was reported through post
        }
    }

    private void Report(CancellationTokenSource job, GenerationProgress p)
    {
        // A report queued before the job ended may arrive after it; it belongs to a finished job then.
        if (State != JobState.Running || !ReferenceEquals(job, _cts)) return;
        var total = Math.Max(1, p.TotalSteps * p.BatchCount);
        ProgressFraction = Math.Clamp((double)(p.Batch * p.TotalSteps + p.Step) / total, 0, 1);
        StatusText = string.Create(CultureInfo.InvariantCulture,
            $"batch {p.Batch + 1}/{p.BatchCount}, step {p.Step}/{p.TotalSteps} ({p.StepsPerSecond:0.0} it/s, ETA {p.Remaining.TotalSeconds:0}s)");
        Changed?.Invoke();
    }

    private void ShowLive(CancellationTokenSource job, RgbImage image, int step, int total, bool taesd)
    {
        // A preview computed before the job ended may arrive after its final image: that one stays.
        if (State != JobState.Running || !ReferenceEquals(job, _cts)) return;
        Preview.ShowLive(image, step, total, taesd);
    }

    private void Complete(JobResult result)
    {
        if (result.Images.Count > 0) Preview.ShowFile(result.Images[^1].Path, result.Images[^1].Infotext);
        _images.AddRange(result.Images);
        var done = $"done: {result.Images.Count} image{(result.Images.Count == 1 ? "" : "s")} in {Elapsed()}";
        if (result.Images.Count > 0) done += string.Create(CultureInfo.InvariantCulture, $", seed {result.Images[0].Seed}");
        foreach (var w in result.Warnings.Distinct()) done += $"; warning: {w}";
        ProgressFraction = 1;
        End(done);
    }

    private void End(string status)
    {
        State = JobState.Idle;
        StatusText = status;
        Changed?.Invoke();
    }

    private string Elapsed() => string.Create(CultureInfo.InvariantCulture, $"{_clock.Elapsed.TotalSeconds:0.0}s");

    // Progress<T> would post to a captured context; the caller's post callback decides the thread instead.
    private sealed class CallbackProgress(Action<GenerationProgress> report, Action<RgbImage, int, int, bool> preview) : IProgress<GenerationProgress>, IPreviewSink
    {
        public void Report(GenerationProgress value) => report(value);

        public void Preview(RgbImage image, int step, int totalSteps, bool taesd) => preview(image, step, totalSteps, taesd);
    }
}
