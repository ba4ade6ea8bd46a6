using System.Diagnostics;
using System.Globalization;
using LoraBridge.Models;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>
/// Drives one generation step by step: plan → networks → cached conditioning → sampler steps → PNG files.
/// Network weights are restored whatever happens, and files appear only complete.
/// </summary>
public sealed partial class GenerationEngine
{
    /// <summary>Written as "Version" in infotext.</summary>
    public static readonly string Version = "lorabridge-" + (typeof(GenerationEngine).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    private const int MaxCachedConditionings = 256;

    private readonly IGenerationBackend _backend;
    private readonly IPromptPlanner _planner;
    private readonly Func<string, NetworkFile?> _resolveNetwork;
    private readonly Dictionary<ConditioningKey, ConditioningHandle> _conditionings = [];
    private readonly HashSet<string> _loadedNetworks = new(StringComparer.Ordinal);
    private string? _checkpointPath;
    private string _blockWeightsKey = "";
    private List<NetworkSetting> _applied = [];

    /// <summary>Creates an engine over a backend, a prompt planner and a network resolver (catalog lookup).</summary>
    /// <param name="backend">The model side.</param>
    /// <param name="planner">The prompt engine.</param>
    /// <param name="resolveNetwork">Finds a network file by the name the prompt uses; throws when it is missing, or
    /// returns null to skip it (A1111's "skip and note" behaviour).</param>
    public GenerationEngine(IGenerationBackend backend, IPromptPlanner planner, Func<string, NetworkFile?> resolveNetwork)
    {
        _backend = backend;
        _planner = planner;
        _resolveNetwork = resolveNetwork;
    }

    /// <summary>Conditionings held in the cache (for tests and diagnostics).</summary>
    public int CachedConditionings => _conditionings.Count;

    /// <summary>How many times a checkpoint was actually loaded (a repeated job on the same file loads nothing).</summary>
    public int CheckpointLoads { get; private set; }

    // A load begun before the first job (BeginCheckpointLoad): the checkpoint and the backend's pending answer.
    private (string Path, Task<bool> Load)? _pendingLoad;

    /// <summary>
    /// Starts loading <paramref name="path"/> now, so the model loads on the Python thread while the caller's own work
    /// (tokenizer, prompt planning) runs; the next job on that checkpoint takes this load instead of starting one,
    /// and counts it in <see cref="CheckpointLoads"/>. A failure surfaces in that job, as its own load's would.
    /// </summary>
    public void BeginCheckpointLoad(string path, CancellationToken ct)
    {
        if (_pendingLoad is not null || _checkpointPath == path) return;
        var load = _backend.LoadCheckpointAsync(path, ct);
        // Observed here too: a command that stops before its first job (a bad option) never awaits it.
        load.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _pendingLoad = (path, load);
    }

    // The job's checkpoint load: the one begun early when it is for this file, else a new one (after any other pending
    // load, which the backend runs first anyway).
    private async Task<bool> LoadCheckpointAsync(string path, CancellationToken ct)
    {
        if (_pendingLoad is { } pending)
        {
            _pendingLoad = null;
            if (pending.Path == path) return await pending.Load.ConfigureAwait(false);
            try
            {
                await pending.Load.ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Another checkpoint's early load: replaced by the load below, so its failure is not this job's.
            }
        }
        return await _backend.LoadCheckpointAsync(path, ct).ConfigureAwait(false);
    }

    /// <summary>Callbacks made before each job, after each step and after each image; <c>null</c> for none.</summary>
    public IGenerationHooks? Hooks { get; set; }

    /// <summary>Runs <paramref name="request"/> on <paramref name="checkpoint"/>, writing one PNG per image.</summary>
    /// <exception cref="PromptPlanException">The prompt cannot be planned.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; weights restored, no partial file.</exception>
    public async Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, CheckpointContext checkpoint,
        IProgress<GenerationProgress>? progress = null, CancellationToken ct = default)
    {
        var hooks = Hooks;
        if (hooks is not null) request = await hooks.BeforeJobAsync(request, ct).ConfigureAwait(false);
        ValidateRequest(request);
        var encoder = ConditioningEncoder.For(_backend, checkpoint, request);
        var hiresEncoder = ConditioningEncoder.ForHires(_backend, checkpoint, request) ?? encoder;
        var plan = _planner.Plan(request.Prompt, request.NegativePrompt, request.Steps);
        var hiresPlan = PlanHires(request);
        var networks = new List<NetworkFile>();
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in plan.NetworkNames.Concat(hiresPlan?.NetworkNames ?? []).Distinct(StringComparer.Ordinal))
        {
            if (_resolveNetwork(name) is { } file) networks.Add(file);
            else skipped.Add(name);
        }
        if (skipped.Count > 0)
        {
            plan = WithoutNetworks(plan, skipped);
            if (hiresPlan is not null) hiresPlan = WithoutNetworks(hiresPlan, skipped);
        }
        long seed = request.Seed == -1 ? Random.Shared.NextInt64(0, 4294967294L) : request.Seed;
        string? tiHashes = TextualInversionPlan.HashesFor(request, checkpoint, _planner);

        bool loaded = await LoadCheckpointAsync(checkpoint.Path, ct).ConfigureAwait(false);
        if (loaded) CheckpointLoads++;
        if (loaded || _checkpointPath != checkpoint.Path)
        {
            // Another checkpoint: its encoder gives other conditionings and its patcher knows no networks yet.
            await DropConditioningsAsync(keep: null).ConfigureAwait(false);
            _loadedNetworks.Clear();
            _blockWeightsKey = "";
            _applied = [];
            _checkpointPath = checkpoint.Path;
        }
        foreach (var network in networks)
        {
            // Marked loaded only once the load succeeded: a failed or cancelled load must be retried by the next job.
            if (_loadedNetworks.Contains(network.Name)) continue;
            await _backend.LoadNetworkAsync(network.Name, network.Path, ct).ConfigureAwait(false);
            _loadedNetworks.Add(network.Name);
        }
        await SendBlockWeightsAsync(plan, skipped, ct).ConfigureAwait(false);

        var images = new List<GeneratedImage>();
        bool failed = false;
        LastJobPatches = null;
        LastJobWarnings.Clear();
        var patchBefore = await _backend.PatchTotalsAsync(ct).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        int stepsDone = 0;
        try
        {
            var conds = await EncodeAllAsync(plan, checkpoint.Chunker, encoder, ct).ConfigureAwait(false);
            for (int batch = 0; batch < request.BatchCount; batch++)
            {
                long batchSeed = seed + (long)batch * request.BatchSize;
                var samplingSettings = new SamplingSettings(request.Sampler, request.Schedule, request.Steps, batchSeed,
                    request.BatchSize, request.Width, request.Height, request.RandnSource, request.EtaNoiseSeedDelta);
                var sampling = request.Img2Img is { } img2img
                    ? await ImageBackend.StartImg2ImgAsync(samplingSettings, img2img, ct).ConfigureAwait(false)
                    : await _backend.StartAsync(samplingSettings, ct).ConfigureAwait(false);
                SamplingHandle? hires = null;
                var batchHooks = hooks is IBatchHooks { HasBatchHooks: true } bh ? bh : null;
                int firstOfBatch = images.Count;
                try
                {
                    if (batchHooks is not null) await BeforeBatchAsync(batchHooks, request, batch, batchSeed, ct).ConfigureAwait(false);
                    int expected = sampling.TotalCalls + (request.Hires is { } h ? HiresRules.Steps(request, h) : 0);
                    stepsDone = await RunPassAsync(sampling, plan, conds, request, encoder, batch, 0, expected, stepsDone, clock, progress, hooks, ct).ConfigureAwait(false);
                    if (request.Hires is { } hr && hiresPlan is not null)
                    {
                        var hrConds = await EncodeAllAsync(hiresPlan, checkpoint.Chunker, hiresEncoder, ct).ConfigureAwait(false);
                        hires = await ImageBackend.StartHiresAsync(sampling, new HiresPassSettings(hr.Sampler ?? request.Sampler,
                            hr.Schedule ?? request.Schedule, HiresRules.Steps(request, hr), hr.DenoisingStrength, hr.Scale, hr.ResizeX,
                            hr.ResizeY, hr.Upscaler), ct).ConfigureAwait(false);
                        stepsDone = await RunPassAsync(hires, hiresPlan, hrConds, request, hiresEncoder, batch, sampling.TotalCalls,
                            sampling.TotalCalls + hires.TotalCalls, stepsDone, clock, progress, hooks, ct).ConfigureAwait(false);
                    }

                    foreach (var warning in await _backend.LayerWarningsAsync(ct).ConfigureAwait(false))
                        if (!LastJobWarnings.Contains(warning)) LastJobWarnings.Add(warning);
                    var seeds = Enumerable.Range(0, request.BatchSize).Select(k => batchSeed + k).ToList();
                    var records = seeds.Select(s => BuildInfotext(request, checkpoint, networks, sampling, s, tiHashes, hires)).ToList();
                    var infotexts = records.Select(r => r.Format()).ToList();
                    var pngs = await DecodeForSavingAsync(hires ?? sampling, records, infotexts, seeds, images.Count, hooks, ct).ConfigureAwait(false);
                    ct.ThrowIfCancellationRequested();
                    for (int k = 0; k < pngs.Count; k++)
                    {
                        var path = OutputNaming.WriteNext(request.OutputDir, seeds[k], pngs[k]);
                        var image = new GeneratedImage(path, seeds[k], infotexts[k]);
                        images.Add(image);
                        if (hooks is not null) await hooks.AfterImageAsync(image, ct).ConfigureAwait(false);
                    }
                    if (batchHooks is not null)
                        await batchHooks.AfterBatchAsync(new BatchDone(batch, request.BatchCount, seeds, images[firstOfBatch..]), ct).ConfigureAwait(false);
                }
                finally
                {
                    if (hires is not null) await _backend.ReleaseAsync(hires.Id).ConfigureAwait(false);
                    await _backend.ReleaseAsync(sampling.Id).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            failed = true;
            throw;
        }
        finally
        {
            // Kept patches only after a job that completed; any failure or cancellation restores the base weights.
            if (!KeepNetworksBetweenJobs || failed)
            {
                _applied = [];
                await _backend.RestoreAsync().ConfigureAwait(false);
            }
            if (patchBefore is { } b && await _backend.PatchTotalsAsync(CancellationToken.None).ConfigureAwait(false) is { } a)
                LastJobPatches = new PatchStatistics(a.Layers - b.Layers, (a.Seconds - b.Seconds) * 1000.0);
        }
        return images;
    }

    /// <summary>
    /// Keep the networks patched into the weights after a job that completed, so a next job with the same networks and
    /// multipliers patches nothing and one that changes a multiplier re-merges only that network's layers (batch, TUI).
    /// Failures and cancellations still restore the base weights; <see cref="RestoreNetworksAsync"/> restores on demand.
    /// </summary>
    public bool KeepNetworksBetweenJobs { get; set; }

    /// <summary>Warnings of the last job: networks whose layers could not be merged (file and first failing key).</summary>
    public List<string> LastJobWarnings { get; } = [];

    /// <summary>Layers re-merged and time spent merging during the last job (null when the backend does not count).</summary>
    public PatchStatistics? LastJobPatches { get; private set; }

    /// <summary>Restores the base weights now (after jobs run with <see cref="KeepNetworksBetweenJobs"/>).</summary>
    public async Task RestoreNetworksAsync()
    {
        _applied = [];
        await _backend.RestoreAsync().ConfigureAwait(false);
    }

    // Every weight change goes through here, so the engine knows what the model holds between jobs.
    private Task SetNetworksAsync(IReadOnlyList<NetworkSetting> settings, CancellationToken ct)
    {
        _applied = settings.ToList();
        return _backend.SetNetworksAsync(settings, ct);
    }

    /// <summary>The backend's img2img/hires side.</summary>
    private IImageGenerationBackend ImageBackend => _backend as IImageGenerationBackend
        ?? throw new NotSupportedException("this backend cannot run img2img or hires fix");

    private GenerationPlan? PlanHires(GenerationRequest request)
    {
        if (request.Hires is not { } hr) return null;
        if (_planner is not IHiresPromptPlanner planner) throw new NotSupportedException("the prompt planner cannot plan a hires pass");
        return planner.PlanHires(hr.Prompt.Length > 0 ? hr.Prompt : request.Prompt,
            hr.NegativePrompt.Length > 0 ? hr.NegativePrompt : request.NegativePrompt, request.Steps, HiresRules.Steps(request, hr));
    }

    private static GenerationPlan WithoutNetworks(GenerationPlan plan, HashSet<string> skipped) =>
        plan with { Steps = plan.Steps.Select(s => s with { Networks = s.Networks.Where(n => !skipped.Contains(n.Name)).ToList() }).ToList() };

    /// <summary>
    /// Runs every model call of one pass: call i takes step i of the plan (its texts and network multipliers).
    /// Step i+1's calls are issued before step i is awaited: the backend runs calls in the order issued, and the
    /// Python thread then finds its next work queued instead of sleeping until C# wakes it (benchmark host-overhead:
    /// ~400 → ~160 µs of host time per step). Returns the job's steps done so far.
    /// </summary>
    private async Task<int> RunPassAsync(SamplingHandle sampling, GenerationPlan plan, EncodedConditionings conds, GenerationRequest request,
        ConditioningEncoder encoder, int batch, int offset, int total, int stepsDone, Stopwatch clock, IProgress<GenerationProgress>? progress, IGenerationHooks? hooks,
        CancellationToken ct)
    {
        if (StepsOneAtATime(hooks))
            return await RunPassSerialAsync(sampling, plan, conds, request, encoder, batch, offset, total, stepsDone, clock, progress, hooks!, ct).ConfigureAwait(false);
        Task? running = null;
        try
        {
            IReadOnlyList<NetworkSetting>? applied = null;
            for (int i = 0; i < sampling.TotalCalls; i++)
            {
                var (settings, positive, negative) = StepInputs(plan, conds, encoder, i);
                Task? set = null;
                if (applied is null || !settings.SequenceEqual(applied))
                {
                    set = SetNetworksAsync(settings, ct);
                    applied = settings;
                }
                var call = _backend.StepAsync(sampling, positive, negative, request.CfgScale, ct);
                var issued = set is null ? call : Task.WhenAll(set, call);
                if (running is not null)
                {
                    var previous = running;
                    running = issued;
                    await previous.ConfigureAwait(false);
                    stepsDone++;
                    var stepProgress = Progress(batch, request.BatchCount, offset + i, Math.Max(total, offset + i), stepsDone, clock.Elapsed);
                    progress?.Report(stepProgress);
                    if (hooks is not null) await hooks.AfterStepAsync(stepProgress, ct).ConfigureAwait(false);
                }
                else
                {
                    running = issued;
                }
            }
            if (running is not null)
            {
                var last = running;
                running = null;
                await last.ConfigureAwait(false);
                stepsDone++;
                int step = offset + sampling.TotalCalls;
                var lastProgress = Progress(batch, request.BatchCount, step, Math.Max(total, step), stepsDone, clock.Elapsed);
                progress?.Report(lastProgress);
                if (hooks is not null) await hooks.AfterStepAsync(lastProgress, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            // A step issued behind a failed or cancelled one: let it finish (a cancelled one does not run) and
            // observe its outcome, so the release and restore come after it and no fault goes unobserved.
            if (running is not null) await running.ContinueWith(static t => t.Exception, TaskScheduler.Default).ConfigureAwait(false);
        }
        return stepsDone;
    }

    /// <summary>Checks a request's settings before any work.</summary>
    /// <exception cref="ArgumentException">A setting out of range, with its value.</exception>
    public static void ValidateRequest(GenerationRequest r)
    {
        if (r.Steps < 1) throw new ArgumentException($"steps must be at least 1, got {r.Steps}");
        if (r.Width <= 0 || r.Height <= 0 || r.Width % 8 != 0 || r.Height % 8 != 0)
            throw new ArgumentException($"size must be positive multiples of 8, got {r.Width}x{r.Height}");
        if (r.BatchSize < 1 || r.BatchCount < 1) throw new ArgumentException("batch size and count must be at least 1");
        if (r.ClipSkip is < 1 or > 12) throw new ArgumentException($"clip skip must be between 1 and 12, got {r.ClipSkip}");
        if (r.Seed < -1 || r.Seed > uint.MaxValue) throw new ArgumentException($"seed must be -1 or between 0 and {uint.MaxValue}, got {r.Seed}");
        HiresRules.Validate(r);
        GenerationLimits.Check(r);
    }

    /// <summary>The text-encoder multipliers a step's conditioning is encoded under: part of the cache key.</summary>
    private static string TextEncoderKey(IEnumerable<NetworkSetting> networks) =>
        string.Join(";", networks.Where(n => n.Te != 0).Select(n => $"{n.Name}:{n.Te.ToString("R", CultureInfo.InvariantCulture)}:{n.Dyn}"));

    // A text's conditioning depends on the batch it was encoded in (A1111 encodes one prompt's schedule together),
    // so the batch is part of the key, with the encoder's scope (SD1: the clip skip; SDXL: the size conditioning and
    // the empty-negative rule) and the text-encoder multipliers.
    private static ConditioningKey Key(IReadOnlyList<string>? batch, string text, StepConditioning step, ConditioningEncoder encoder, bool negative)
    {
        var texts = BatchOf(batch, text);
        return new(encoder.Scope(texts, negative), TextEncoderKey(step.Networks), ConditioningKey.BatchText(texts), text);
    }

    // Fields compared one by one, so no prompt text (control characters included) can make two keys meet.
    private readonly record struct ConditioningKey(string Scope, string TextEncoder, string Batch, string Text)
    {
        // Length-prefixed, so ["a,b"] and ["a", "b"] differ whatever characters the texts hold.
        public static string BatchText(IReadOnlyList<string> batch) => string.Concat(batch.Select(t => $"{t.Length}:{t}"));
    }

    private static IReadOnlyList<string> BatchOf(IReadOnlyList<string>? batch, string text) =>
        batch is not null && batch.Contains(text) ? batch : [text];

    private static IEnumerable<(IReadOnlyList<string>? Batch, string Text, bool Negative)> TextsOf(GenerationPlan plan, StepConditioning step) =>
        step.Positive.Select((p, k) => (plan.PositiveBatches is { } b && k < b.Count ? b[k] : null, p.Text, false))
            .Append((plan.NegativeBatch, step.Negative, true));

    private sealed record EncodedConditionings(Dictionary<ConditioningKey, ConditioningHandle> Handles, IReadOnlyDictionary<string, NetworkSetting> TextEncoderState);

    /// <summary>
    /// Encodes every (batch, text, text-encoder multipliers) the plan needs, grouped so the text encoder's weights
    /// change once per group; cached ones are reused across generations.
    /// </summary>
    private async Task<EncodedConditionings> EncodeAllAsync(GenerationPlan plan, PromptChunker chunker, ConditioningEncoder encoder, CancellationToken ct)
    {
        var handles = new Dictionary<ConditioningKey, ConditioningHandle>();
        // The text encoder as the model has it now (patches kept from the previous job, or nothing after a restore).
        var state = _applied.Where(n => n.Te != 0).ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var group in plan.Steps.GroupBy(s => TextEncoderKey(s.Networks)))
        {
            // UNet multipliers stay as the model has them (kept patches: nothing to undo and redo); 0 after a restore.
            var teSettings = group.First().Networks.Where(n => n.Te != 0)
                .Select(n => n with { Unet = _applied.FirstOrDefault(a => a.Name == n.Name)?.Unet ?? 0 }).ToList();
            bool applied = false;
            foreach (var step in group)
            {
                foreach (var (batch, text, negative) in TextsOf(plan, step))
                {
                    var key = Key(batch, text, step, encoder, negative);
                    if (handles.ContainsKey(key)) continue;
                    if (!_conditionings.ContainsKey(key))
                    {
                        if (!applied)
                        {
                            await SetNetworksAsync(teSettings, ct).ConfigureAwait(false);
                            state = teSettings.ToDictionary(n => n.Name, StringComparer.Ordinal);
                            applied = true;
                        }
                        await EncodeBatchAsync(BatchOf(batch, text), step, chunker, encoder, negative, ct).ConfigureAwait(false);
                    }
                    handles[key] = _conditionings[key];
                }
            }
        }
        if (_conditionings.Count > MaxCachedConditionings) await DropConditioningsAsync(keep: handles.Keys.ToHashSet()).ConfigureAwait(false);
        return new EncodedConditionings(handles, state);
    }

    /// <summary>
    /// One A1111 batch: every schedule text (repeats included, they count in the emphasis mean), padded with empty
    /// chunks to the longest; one cached handle per distinct text.
    /// </summary>
    private async Task EncodeBatchAsync(IReadOnlyList<string> batch, StepConditioning step, PromptChunker chunker, ConditioningEncoder encoder,
        bool negative, CancellationToken ct)
    {
        var chunked = batch.Select(t => chunker.Chunk(_planner.Attention(t).Select(f => new WeightedText(f.Text, f.Weight)).ToList()).Chunks).ToList();
        int count = chunked.Max(c => c.Count);
        var empty = chunker.EmptyChunk();
        var texts = chunked.Select(c => (IReadOnlyList<TokenChunk>)c.Concat(Enumerable.Repeat(empty, count - c.Count))
            .Select(TokenChunk.From).ToList()).ToList();
        var encoded = await encoder.EncodeAsync(texts, batch, negative, ct).ConfigureAwait(false);
        for (int i = 0; i < batch.Count; i++)
        {
            if (!_conditionings.TryAdd(Key(batch, batch[i], step, encoder, negative), encoded[i]))
                await _backend.ReleaseAsync(encoded[i].Id).ConfigureAwait(false); // a repeat of a text already kept
        }
    }

    /// <summary>
    /// UNet multipliers of the step; text-encoder multipliers stay as they were left after encoding, because the
    /// text encoder is not used while sampling and changing it would only cost re-merges.
    /// </summary>
    private static List<NetworkSetting> SamplingNetworks(StepConditioning step, IReadOnlyDictionary<string, NetworkSetting> teState)
    {
        var result = step.Networks.Select(n => n with { Te = teState.TryGetValue(n.Name, out var t) ? t.Te : 0 }).ToList();
        result.AddRange(teState.Values.Where(t => result.All(r => r.Name != t.Name)).Select(t => t with { Unet = 0 }));
        result.RemoveAll(n => n.Te == 0 && n.Unet == 0);
        return result;
    }

    /// <summary>
    /// Sends the job's LoRA block weights when they differ from the last job's. Block weights change the text encoder
    /// (BASE) too, and the conditioning cache key knows only multipliers, so cached conditionings go with them.
    /// </summary>
    private async Task SendBlockWeightsAsync(GenerationPlan plan, HashSet<string> skipped, CancellationToken ct)
    {
        var weights = plan.BlockWeights.Where(b => !skipped.Contains(b.Name)).ToList();
        string key = string.Join("\u0001", weights.Select(b => $"{b.Name}\u0002{string.Join(",", b.Weights.Select(w => w.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}\u0002{b.Elemental}"));
        if (key == _blockWeightsKey) return;
        await _backend.SetBlockWeightsAsync(weights, ct).ConfigureAwait(false);
        _blockWeightsKey = key;
        await DropConditioningsAsync(keep: null).ConfigureAwait(false);
    }

    private async Task DropConditioningsAsync(HashSet<ConditioningKey>? keep)
    {
        foreach (var (key, handle) in _conditionings.ToList())
        {
            if (keep is not null && keep.Contains(key)) continue;
            _conditionings.Remove(key);
            await _backend.ReleaseAsync(handle.Id).ConfigureAwait(false);
        }
    }

    private static GenerationProgress Progress(int batch, int batchCount, int step, int total, int done, TimeSpan elapsed)
    {
        double rate = done / Math.Max(elapsed.TotalSeconds, 1e-9);
        int left = (batchCount - batch) * total - step;
        return new GenerationProgress(batch, batchCount, step, total, rate, TimeSpan.FromSeconds(left / rate));
    }

    /// <summary>A1111's infotext for one image of this job.</summary>
    /// <param name="request">The job.</param>
    /// <param name="checkpoint">Its checkpoint.</param>
    /// <param name="networks">The networks it used (for "Lora hashes").</param>
    /// <param name="sampling">The (first) pass.</param>
    /// <param name="seed">The image's seed.</param>
    /// <param name="tiHashes">A1111's "TI hashes" value, or null.</param>
    /// <param name="hires">The hires pass, when there was one.</param>
    public static string FormatInfotext(GenerationRequest request, CheckpointContext checkpoint, IReadOnlyList<NetworkFile> networks,
        SamplingHandle sampling, long seed, string? tiHashes = null, SamplingHandle? hires = null) =>
        BuildInfotext(request, checkpoint, networks, sampling, seed, tiHashes, hires).Format();

    /// <summary>A1111's infotext for one image of this job, as prompt, negative prompt and parameters (see <see cref="FormatInfotext"/>).</summary>
    public static Infotext BuildInfotext(GenerationRequest request, CheckpointContext checkpoint, IReadOnlyList<NetworkFile> networks,
        SamplingHandle sampling, long seed, string? tiHashes = null, SamplingHandle? hires = null)
    {
        var p = new List<KeyValuePair<string, string>>
        {
            new("Steps", request.Steps.ToString(CultureInfo.InvariantCulture)),
            new("Sampler", request.Sampler),
        };
        p.AddRange(sampling.InfotextParams.Where(kv => kv.Key == "Schedule type"));
        p.Add(new("CFG scale", Infotext.FormatNumber(request.CfgScale)));
        p.Add(new("Seed", seed.ToString(CultureInfo.InvariantCulture)));
        p.Add(new("Size", $"{request.Width}x{request.Height}"));
        if (checkpoint.ShortHash is not null) p.Add(new("Model hash", checkpoint.ShortHash));
        p.Add(new("Model", checkpoint.Name));
        p.AddRange(HiresRules.Denoising(request));
        if (request.ClipSkip > 1) p.Add(new("Clip skip", request.ClipSkip.ToString(CultureInfo.InvariantCulture)));
        if (request.EtaNoiseSeedDelta != 0) p.Add(new("ENSD", request.EtaNoiseSeedDelta.ToString(CultureInfo.InvariantCulture)));
        if (request.RandnSource != "GPU") p.Add(new("RNG", request.RandnSource));
        p.AddRange(sampling.InfotextParams.Where(kv => kv.Key != "Schedule type"));
        if (request.Hires is { } hr) p.AddRange(HiresRules.Infotext(request, hr, hires));
        if (LoraCatalog.LoraHashes(networks.Select(n => (n.Alias, n.ShortHash))) is { } loraHashes) p.Add(new("Lora hashes", loraHashes));
        if (!string.IsNullOrEmpty(tiHashes)) p.Add(new("TI hashes", tiHashes)); // after Lora hashes, as A1111 adds it after the conds
        p.Add(new("Version", Version));
        return new Infotext(request.Prompt, request.NegativePrompt, p);
    }
}
