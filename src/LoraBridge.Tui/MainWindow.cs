using System.Collections.ObjectModel;
using System.Drawing;
using LoraBridge.Models;
using Terminal.Gui.App;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace LoraBridge.Tui;

// Terminal.Gui 2.5 marks TextView obsolete in favour of EditorView from a separate package (tui-cs/Editor) that is
// not in Directory.Packages.props; TextView still ships, works and is what the pinned version offers.
#pragma warning disable CS0618

/// <summary>
/// The LoraBridge window: prompt editor, negative prompt, generation fields, LoRA list, live plan panel, job controls
/// and the generated files. All logic lives in <see cref="GeneratorViewModel"/>; this class only binds views to it.
/// </summary>
public sealed class MainWindow : Window
{
    private readonly GeneratorViewModel _vm;
    private readonly Generator _generator;
    private readonly Func<bool, IReadOnlyList<LoraCard>> _loras;
    private readonly List<LoraCard> _allLoras = [];
    private readonly List<LoraCard> _shownLoras = [];
    private readonly Func<IReadOnlyList<EmbeddingCard>?> _embeddings;
    private readonly List<EmbeddingCard> _shownEmbeddings = [];
    private readonly Func<BaseFamily> _checkpointFamily;
    private IReadOnlyList<EmbeddingCard>? _allEmbeddings;
    private int _networkWidth;
    private readonly Action<Action> _post;
    private readonly ObservableCollection<string> _loraItems = [];
    private readonly ObservableCollection<string> _fileItems = [];

    /// <summary>Builds the window.</summary>
    /// <param name="vm">State and logic.</param>
    /// <param name="generator">Runs a job (on a background thread).</param>
    /// <param name="loras">LoRA cards (alias and sidecar values); the argument asks for a rescan of the folders.</param>
    /// <param name="post">Runs an action on the UI thread (<c>IApplication.Invoke</c>).</param>
    /// <param name="checkpoints">Checkpoints to choose from (the model folders' and the built-in demos); null: only the form's.</param>
    /// <param name="checkpointFamily">Family of the checkpoint the form names (LoRAs of another family are marked); null: Unknown (no marks).</param>
    /// <param name="embeddings">The embeddings of the prepared checkpoint; returns null until they are known (null: none listed).</param>
    public MainWindow(GeneratorViewModel vm, Generator generator, Func<bool, IReadOnlyList<LoraCard>> loras, Action<Action> post,
        IReadOnlyList<string>? checkpoints = null, Func<BaseFamily>? checkpointFamily = null, Func<IReadOnlyList<EmbeddingCard>?>? embeddings = null)
    {
        _checkpointFamily = checkpointFamily ?? (() => BaseFamily.Unknown);
        _embeddings = embeddings ?? (() => null);
        _vm = vm;
        _generator = generator;
        _loras = loras;
        _post = post;
        Title = "LoraBridge  (Ctrl+G generate · Esc cancel · Ctrl+L LoRA list · Ctrl+Q quit)";

        var left = new View { X = 0, Y = 0, Width = Dim.Func(_ => LeftWidth(Viewport.Width)), Height = Dim.Fill(), CanFocus = true };
        PromptEditor = new TextView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill(), WordWrap = true, TabKeyAddsTab = false, Text = vm.Prompt };
        var promptFrame = PromptFrame = new FrameView { Title = "Prompt", X = 0, Y = 0, Width = Dim.Fill(), Height = 6 };
        promptFrame.Add(PromptEditor);

        var negLabel = new Label { Text = "Negative:", X = 0, Y = Pos.Bottom(promptFrame) };
        NegativeField = new TextField { X = Pos.Right(negLabel) + 1, Y = Pos.Top(negLabel), Width = Dim.Fill(), Text = vm.NegativePrompt };
        // Subview order is the Tab order: prompt, negative prompt, settings, buttons, plan.
        left.Add(promptFrame, negLabel, NegativeField);

        // Four short rows: every setting fits in the left column of an 80-column terminal.
        var row = Pos.Bottom(negLabel);
        StepsField = Field(left, "Steps:", 0, row, 5, vm.StepsText);
        CfgField = Field(left, "CFG:", Pos.Right(StepsField) + 2, row, 5, vm.CfgText);
        SizeField = Field(left, "Size:", Pos.Right(CfgField) + 2, row, 9, vm.SizeText);
        SeedField = Field(left, "Seed:", 0, row + 1, 12, vm.SeedText);
        RandomSeedButton = new Button { Text = "Rando_m", X = Pos.Right(SeedField) + 1, Y = row + 1, NoPadding = true, ShadowStyle = ShadowStyles.None, Height = 1 };
        ReuseSeedButton = new Button { Text = "_Reuse", X = Pos.Right(RandomSeedButton) + 1, Y = row + 1, NoPadding = true, ShadowStyle = ShadowStyles.None, Height = 1 };
        left.Add(RandomSeedButton, ReuseSeedButton);
        BatchCountField = Field(left, "Batch:", 0, row + 2, 3, vm.BatchCountText);
        BatchSizeField = Field(left, "x", Pos.Right(BatchCountField) + 1, row + 2, 2, vm.BatchSizeText);
        ClipSkipField = Field(left, "Clip skip:", Pos.Right(BatchSizeField) + 1, row + 2, 2, vm.ClipSkipText);
        var modelLabel = new Label { Text = "Model:", X = Pos.Right(ClipSkipField) + 1, Y = row + 2 };
        var models = checkpoints is { Count: > 0 } ? checkpoints : [vm.Checkpoint.Length > 0 ? vm.Checkpoint : "(configured)"];
        CheckpointField = new ChoiceField(models, vm.Checkpoint) { X = Pos.Right(modelLabel) + 1, Y = row + 2, Width = Dim.Fill() };
        left.Add(modelLabel, CheckpointField);
        var samplerLabel = new Label { Text = "Sampler:", X = 0, Y = row + 3 };
        SamplerField = new ChoiceField(GeneratorViewModel.Samplers, vm.Sampler) { X = Pos.Right(samplerLabel) + 1, Y = row + 3, Width = 10 };
        var scheduleLabel = new Label { Text = "Schedule:", X = Pos.Right(SamplerField) + 2, Y = row + 3 };
        ScheduleField = new ChoiceField(GeneratorViewModel.Schedules, vm.Schedule) { X = Pos.Right(scheduleLabel) + 1, Y = row + 3, Width = 12 };
        left.Add(samplerLabel, SamplerField, scheduleLabel, ScheduleField);
        var hiresLabel = new Label { Text = "Hires:", X = 0, Y = row + 4 };
        HiresField = new ChoiceField(vm.HiresChoices, vm.HiresUpscaler) { X = Pos.Right(hiresLabel) + 1, Y = row + 4, Width = 14 };
        left.Add(hiresLabel, HiresField);
        HiresScaleField = Field(left, "×", Pos.Right(HiresField) + 1, row + 4, 4, vm.HiresScaleText);
        HiresStepsField = Field(left, "steps:", Pos.Right(HiresScaleField) + 1, row + 4, 4, vm.HiresStepsText);
        HiresDenoiseField = Field(left, "denoise:", Pos.Right(HiresStepsField) + 1, row + 4, 4, vm.HiresDenoiseText);
        GenerateButton = new Button { Text = "_Generate", X = 0, Y = row + 5, IsDefault = false };
        CancelButton = new Button { Text = "_Cancel", X = Pos.Right(GenerateButton) + 2, Y = Pos.Top(GenerateButton), Enabled = false };
        // A1111's "Live preview method" sits by the buttons: no settings row has room for "Approx cheap" at 80 columns,
        // and a seventh row would put the buttons under the sampler's drop-down list.
        var previewLabel = new Label { Text = "Live:", X = Pos.Right(CancelButton) + 2, Y = Pos.Top(GenerateButton) };
        PreviewMethodField = new ChoiceField(GeneratorViewModel.PreviewMethods, vm.LivePreviewMethod) { X = Pos.Right(previewLabel) + 1, Y = Pos.Top(GenerateButton), Width = 14 };
        Progress = new ProgressBar { X = Pos.Right(PreviewMethodField) + 1, Y = Pos.Top(GenerateButton), Width = Dim.Fill(), Height = 1 };
        // No hot key in the status text: a Label would hide the '_' of "<lora:demo_style:0.8>" as a hot-key marker.
        Status = new Label { X = 0, Y = Pos.Bottom(GenerateButton), Width = Dim.Fill(), Height = 2, Text = vm.StatusText, HotKeySpecifier = (System.Text.Rune)0xFFFF };

        PlanView = new TextView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill(), ReadOnly = true, WordWrap = false, TabKeyAddsTab = false };
        var planFrame = new FrameView { Title = "Plan (per denoiser call)", X = 0, Y = Pos.Bottom(Status), Width = Dim.Fill(), Height = Dim.Fill() };
        planFrame.Add(PlanView);
        left.Add(GenerateButton, CancelButton, previewLabel, PreviewMethodField, Progress, Status, planFrame);

        var searchLabel = new Label { Text = "Find:", X = 0, Y = 0 };
        LoraSearch = new TextField { X = Pos.Right(searchLabel) + 1, Y = 0, Width = Dim.Fill() };
        // The list and the selected LoRA's card share the panel (PanelLayout.NetworkAreas): side by side when wide,
        // the card under the list when narrow.
        LoraList = new ListView
        {
            X = Pos.Func(_ => NetworkAreas.List.X), Y = Pos.Func(_ => NetworkAreas.List.Y),
            Width = Dim.Func(_ => NetworkAreas.List.Width), Height = Dim.Func(_ => NetworkAreas.List.Height),
        };
        LoraList.SetSource(_loraItems);
        Card = new LoraCardModel(new ThumbnailCache(), post);
        CardView = new LoraCardView(Card)
        {
            X = Pos.Func(_ => NetworkAreas.Card.X), Y = Pos.Func(_ => NetworkAreas.Card.Y),
            Width = Dim.Func(_ => NetworkAreas.Card.Width), Height = Dim.Func(_ => NetworkAreas.Card.Height),
        };
        // The picture on top of the right column (as A1111's gallery beside the form), its infotext under it.
        Preview = new PreviewView(vm.Preview) { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill(CaptionRows) };
        Caption = new TextView { X = 0, Y = Pos.Bottom(Preview), Width = Dim.Fill(), Height = CaptionRows, ReadOnly = true, WordWrap = true, TabKeyAddsTab = false, CanFocus = false, Text = vm.Preview.Caption };
        // The right column's heights follow PanelLayout.RightHeights: fixed shares when tall, an accordion at 80×24.
        var previewFrame = ImageFrame = new FrameView
        {
            Title = "Image", X = Pos.Right(left), Y = 0, Width = Dim.Fill(), Height = Dim.Func(_ => RightHeights.Image),
        };
        previewFrame.Add(Preview, Caption);
        vm.Preview.Changed += () => Caption.Text = vm.Preview.Caption;
        var loraFrame = NetworkFrame = new FrameView
        {
            Title = LorasTitle, X = Pos.Right(left), Y = Pos.Bottom(previewFrame), Width = Dim.Fill(), Height = Dim.Func(_ => RightHeights.Networks),
        };
        loraFrame.Add(searchLabel, LoraSearch, LoraList, CardView);
        LoraSearch.TextChanged += (_, _) => FilterLoras();
        // Rows are laid out in columns for the list's width: lay them out again when a resize changes it.
        LoraList.ViewportChanged += (_, _) => { if (LoraList.Viewport.Width != _networkWidth) FilterLoras(); };
        // Moving through the list shows the whole card (type, rank, family, triggers) on the status line.
        LoraList.ValueChanged += (_, _) =>
        {
            ShowSelectedCard();
            if (LoraList.HasFocus && SelectedNetworkDetails is { } d) Status.Text = d;
        };
        FileList = new ListView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill() };
        FileList.SetSource(_fileItems);
        var filesFrame = HistoryFrame = new FrameView { Title = "History (Enter reuses)", X = Pos.Right(left), Y = Pos.Bottom(loraFrame), Width = Dim.Fill(), Height = Dim.Fill() };
        filesFrame.Add(FileList);
        // At small sizes the panel with the focus gets the room: focus moving in or out of a panel lays the column out again.
        loraFrame.HasFocusChanged += (_, _) => SetNeedsLayout();
        filesFrame.HasFocusChanged += (_, _) => SetNeedsLayout();
        Add(left, previewFrame, loraFrame, filesFrame);

        HelpView = new TextView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill(), ReadOnly = true, WordWrap = true, Text = HelpText };
        HelpFrame = new FrameView { Title = "Help (F1 or Esc closes)", X = Pos.Center(), Y = Pos.Center(), Width = Dim.Percent(90), Height = Dim.Percent(90), Visible = false };
        HelpFrame.Add(HelpView);
        Add(HelpFrame);

        PromptEditor.ContentsChanged += (_, _) => { _vm.Prompt = PromptEditor.Text; RefreshPlan(); };
        NegativeField.TextChanged += (_, _) => { _vm.NegativePrompt = NegativeField.Text; RefreshPlan(); };
        StepsField.TextChanged += (_, _) => { _vm.StepsText = StepsField.Text; RefreshPlan(); };
        CfgField.TextChanged += (_, _) => _vm.CfgText = CfgField.Text;
        SeedField.TextChanged += (_, _) => _vm.SeedText = SeedField.Text;
        SizeField.TextChanged += (_, _) => _vm.SizeText = SizeField.Text;
        SamplerField.TextChanged += (_, _) => _vm.Sampler = SamplerField.Text;
        ScheduleField.TextChanged += (_, _) => _vm.Schedule = ScheduleField.Text;
        PreviewMethodField.TextChanged += (_, _) => _vm.LivePreviewMethod = PreviewMethodField.Text;
        BatchCountField.TextChanged += (_, _) => _vm.BatchCountText = BatchCountField.Text;
        BatchSizeField.TextChanged += (_, _) => _vm.BatchSizeText = BatchSizeField.Text;
        ClipSkipField.TextChanged += (_, _) => _vm.ClipSkipText = ClipSkipField.Text;
        HiresField.TextChanged += (_, _) => _vm.HiresUpscaler = HiresField.Text;
        // Another checkpoint may be another family: the mismatch marks follow the choice.
        if (checkpoints is { Count: > 0 }) CheckpointField.TextChanged += (_, _) => { _vm.Checkpoint = CheckpointField.Text; FilterLoras(); };
        HiresScaleField.TextChanged += (_, _) => _vm.HiresScaleText = HiresScaleField.Text;
        HiresStepsField.TextChanged += (_, _) => _vm.HiresStepsText = HiresStepsField.Text;
        HiresDenoiseField.TextChanged += (_, _) => _vm.HiresDenoiseText = HiresDenoiseField.Text;
        RandomSeedButton.Accepting += (_, e) => { e.Handled = true; _vm.RandomSeed(); SeedField.Text = _vm.SeedText; };
        ReuseSeedButton.Accepting += (_, e) => { e.Handled = true; if (_vm.ReuseSeed()) SeedField.Text = _vm.SeedText; };
        GenerateButton.Accepting += (_, e) => { e.Handled = true; StartGeneration(); };
        CancelButton.Accepting += (_, e) => { e.Handled = true; _vm.Cancel(); };
        LoraList.Accepting += (_, e) => { e.Handled = true; InsertSelectedLora(); };
        FileList.Accepting += (_, e) => { e.Handled = true; ReuseSelected(); };
        // Moving through the history shows the row's parameters (only while the user is in the list: a rescan after a
        // job must not hide the job's outcome).
        FileList.ValueChanged += (_, _) => { if (FileList.HasFocus) ShowSelectedHistory(); };
        _vm.Changed += RefreshJob;
        // The plan wraps to the panel's width: render it again when a resize changes that width.
        PlanView.ViewportChanged += (_, _) => { if (PlanView.Viewport.Width != _planWidth) RefreshPlan(); };

        ReloadLoras(rescan: false);
        RefreshPlan();
        RefreshJob();
        // A new session opens on the newest image of the output folders (the History's first row).
        if (_history.Count > 0 && vm.Preview.Path is null) vm.Preview.ShowFile(_history[0].Path, _history[0].Info.Format());
    }

    /// <summary>Rows of infotext under the picture.</summary>
    public const int CaptionRows = 4;

    /// <summary>The image panel (the picture and its infotext).</summary>
    public FrameView ImageFrame { get; }

    /// <summary>The history panel.</summary>
    public FrameView HistoryFrame { get; }

    /// <summary>The selected LoRA's card: facts and preview thumbnail.</summary>
    public LoraCardModel Card { get; }

    /// <summary>The card's view (thumbnail drawn by <see cref="PreviewView"/>, as the image panel).</summary>
    public LoraCardView CardView { get; }

    /// <summary>The right-column panel that gets the room at small sizes: the one holding the focus, else the image.</summary>
    public RightPanel ActiveRightPanel =>
        NetworkFrame?.HasFocus == true ? RightPanel.Networks : HistoryFrame?.HasFocus == true ? RightPanel.History : RightPanel.Image;

    private (int Image, int Networks, int History) RightHeights => PanelLayout.RightHeights(Viewport.Height, ActiveRightPanel);

    private (Rectangle List, Rectangle Card) NetworkAreas =>
        NetworkFrame is null ? default : PanelLayout.NetworkAreas(NetworkFrame.Viewport.Width, NetworkFrame.Viewport.Height);

    /// <summary>Width of the form column: two thirds up to 110 columns, then at least 75 columns and 55 % (the picture gets the rest).</summary>
    public static int LeftWidth(int total) => total <= 110 ? total * 68 / 100 : Math.Max(75, total * 55 / 100);

    /// <summary>The picture: the latest image, the selected history image or the live preview.</summary>
    public PreviewView Preview { get; }

    /// <summary>The picture's infotext (or the live step).</summary>
    public TextView Caption { get; }

    /// <summary>The prompt editor's frame; its title carries A1111's token counter.</summary>
    public FrameView PromptFrame { get; }
    /// <summary>The prompt editor.</summary>
    public TextView PromptEditor { get; }
    /// <summary>The negative prompt.</summary>
    public TextField NegativeField { get; }
    /// <summary>Steps.</summary>
    public TextField StepsField { get; }
    /// <summary>CFG scale.</summary>
    public TextField CfgField { get; }
    /// <summary>Seed.</summary>
    public TextField SeedField { get; }
    /// <summary>Size.</summary>
    public TextField SizeField { get; }
    /// <summary>Sampler (a choice among the engine's samplers).</summary>
    public ChoiceField SamplerField { get; }
    /// <summary>Schedule type (a choice).</summary>
    public ChoiceField ScheduleField { get; }
    /// <summary>Live preview method (A1111's "Live preview method": Auto, Approx cheap, TAESD).</summary>
    public ChoiceField PreviewMethodField { get; }
    /// <summary>Batch count.</summary>
    public TextField BatchCountField { get; }
    /// <summary>Batch size.</summary>
    public TextField BatchSizeField { get; }
    /// <summary>Clip skip.</summary>
    public TextField ClipSkipField { get; }
    /// <summary>The checkpoint (a choice among the model folders' checkpoints and the built-in demos); the next job loads it.</summary>
    public ChoiceField CheckpointField { get; }
    /// <summary>Hires fix upscaler ("Off", or a latent mode).</summary>
    public ChoiceField HiresField { get; }
    /// <summary>Hires upscale factor.</summary>
    public TextField HiresScaleField { get; }
    /// <summary>Hires steps (0: the first pass's).</summary>
    public TextField HiresStepsField { get; }
    /// <summary>Hires denoising strength.</summary>
    public TextField HiresDenoiseField { get; }
    /// <summary>A1111's 🎲: random seed.</summary>
    public Button RandomSeedButton { get; }
    /// <summary>A1111's ♻: the last image's seed.</summary>
    public Button ReuseSeedButton { get; }
    /// <summary>The F1 help panel (hidden until F1).</summary>
    public FrameView HelpFrame { get; }
    /// <summary>The help text view.</summary>
    public TextView HelpView { get; }

    /// <summary>Every key the window handles, as the F1 panel lists them.</summary>
    public const string HelpText =
        "F1            this help (F1 or Esc closes it)\n" +
        "Ctrl+G        generate with the current prompt and settings\n" +
        "Esc           cancel the running job (the LoRA weights are restored)\n" +
        "Ctrl+L        go to the LoRA list (type to search; Enter inserts the tag)\n" +
        "F4            switch the list between LoRAs and embeddings (Enter inserts the embedding's name)\n" +
        "LoRA rows     ! = made for another family than the model · name · type · rank · family · triggers\n" +
        "F3            go to the History (↑/↓ show each image and its infotext; Enter reuses its settings)\n" +
        "F6            next panel (form, LoRAs, History)\n" +
        "LoRA card     the selected LoRA's preview image (thumbnail), name, type, family, triggers and what Enter inserts\n" +
        "Small screen  the LoRA and History panels open when they get the focus (Ctrl+L, F3, a click); the form shows the image\n" +
        "Mouse         click a field or row to focus it; click a choice (model, sampler, schedule, hires) to open its list, click a value to pick it\n" +
        "Ctrl+Q        quit (a running job is cancelled first)\n" +
        "Tab/Shift+Tab next/previous field\n" +
        "Alt+↓         open a choice's list (↑/↓ and Enter pick, Esc closes)\n" +
        "←/→ or Space  step through a choice (model, sampler, schedule, hires upscaler: Off = no hires pass, latent modes, image upscalers)\n" +
        "History       moving through it shows the image and its infotext; Enter reuses its settings\n" +
        "Alt+M         random seed (-1)\n" +
        "Alt+R         reuse the last image's seed\n" +
        "Alt+G / Alt+C Generate / Cancel buttons\n" +
        "Prompt title  A1111's token counter: tokens/limit (tokens per 75-token chunk)\n";
    /// <summary>Starts a job.</summary>
    public Button GenerateButton { get; }
    /// <summary>Cancels the job.</summary>
    public Button CancelButton { get; }
    /// <summary>Job progress.</summary>
    public ProgressBar Progress { get; }
    /// <summary>Status line.</summary>
    public Label Status { get; }
    /// <summary>The live plan panel.</summary>
    public TextView PlanView { get; }
    /// <summary>LoRA aliases.</summary>
    public ListView LoraList { get; }
    /// <summary>Incremental search over the LoRA list (alias and trigger words).</summary>
    public TextField LoraSearch { get; }
    /// <summary>The history: images in the output folders with their infotext, newest first.</summary>
    public ListView FileList { get; }

    /// <summary>Handles the window's keys (listed in <see cref="HelpText"/>).</summary>
    /// <returns>True when the key was one of them.</returns>
    public bool HandleKey(Key key, Action quit)
    {
        if (key == Key.F1) HelpFrame.Visible = !HelpFrame.Visible;
        else if (key == Key.Esc && HelpFrame.Visible) HelpFrame.Visible = false;
        else if (key == Key.G.WithCtrl) StartGeneration();
        else if (key == Key.Esc) _vm.Cancel();
        else if (key == Key.Q.WithCtrl) quit();
        else if (key == Key.L.WithCtrl) { ShowNetworks(embeddings: false); LoraList.SetFocus(); }
        else if (key == Key.F4) { ShowNetworks(!EmbeddingsShown); LoraList.SetFocus(); }
        else if (key == Key.F3) FileList.SetFocus();
        else return false;
        return true;
    }

    /// <summary>Starts a job from the form (ignored while one runs: the status line says so).</summary>
    public void StartGeneration() => _ = _vm.GenerateAsync(_generator, _post);

    /// <summary>Title of the network panel while it lists LoRAs.</summary>
    public const string LorasTitle = "LoRAs  F4:embeddings";

    /// <summary>Title of the network panel while it lists embeddings.</summary>
    public const string EmbeddingsTitle = "Embeddings  F4:LoRAs";

    /// <summary>The panel with the LoRA list (or the embeddings list: F4).</summary>
    public FrameView NetworkFrame { get; }

    /// <summary>True while the network panel lists embeddings instead of LoRAs.</summary>
    public bool EmbeddingsShown { get; private set; }

    /// <summary>The rows the network panel shows (as laid out for its width).</summary>
    public IReadOnlyList<string> NetworkRowsShown => _loraItems;

    /// <summary>The selected row's whole card on one line, or null when nothing is selected.</summary>
    public string? SelectedNetworkDetails =>
        LoraList.SelectedItem is not int i || i < 0 ? null
        : EmbeddingsShown ? (i < _shownEmbeddings.Count ? _shownEmbeddings[i].Details : _allEmbeddings is null ? EmbeddingsPending : null)
        : i < _shownLoras.Count ? _shownLoras[i].Details(_checkpointFamily()) : null;

    /// <summary>The embeddings list's only row before the checkpoint is prepared (its text encoder decides which load).</summary>
    public const string EmbeddingsPending = "(listed once the checkpoint is ready)";

    /// <summary>Lists LoRAs or embeddings in the network panel (F4 toggles; Ctrl+L shows LoRAs).</summary>
    public void ShowNetworks(bool embeddings)
    {
        if (embeddings && !EmbeddingsShown) _allEmbeddings = _embeddings();
        EmbeddingsShown = embeddings;
        NetworkFrame.Title = embeddings ? EmbeddingsTitle : LorasTitle;
        LoraList.SelectedItem = null;
        FilterLoras();
    }

    /// <summary>Inserts the selected LoRA's tag (or embedding's name) at the prompt editor's cursor.</summary>
    public void InsertSelectedLora()
    {
        if (LoraList.SelectedItem is not int i || i < 0) return;
        string snippet;
        if (EmbeddingsShown) snippet = i < _shownEmbeddings.Count ? _shownEmbeddings[i].Snippet : "";
        else snippet = i < _shownLoras.Count ? _shownLoras[i].Snippet : "";
        if (snippet.Length == 0) return;
        var text = PromptEditor.Text;
        var cursor = PromptEditor.InsertionPoint;
        var (updated, offset) = PromptText.Insert(text, PromptText.Offset(text, cursor.Y, cursor.X), snippet);
        PromptEditor.Text = updated;
        var (line, column) = PromptText.LineColumn(updated, offset);
        PromptEditor.InsertionPoint = new Point(column, line);
        _vm.Prompt = updated;
        RefreshPlan();
        PromptEditor.SetFocus();
    }

    private static TextField Field(View parent, string label, Pos x, Pos y, int width, string text)
    {
        var l = new Label { Text = label, X = x, Y = y };
        var f = new TextField { X = Pos.Right(l) + 1, Y = y, Width = width, Text = text };
        parent.Add(l, f);
        return f;
    }

    private void ReloadLoras(bool rescan)
    {
        _allLoras.Clear();
        _allLoras.AddRange(_loras(rescan));
        _allEmbeddings = _embeddings();
        FilterLoras();
    }

    private void FilterLoras()
    {
        // Before the first layout the viewport is empty; 24 cells is the list's width at 80×24.
        _networkWidth = LoraList.Viewport.Width;
        var width = _networkWidth > 0 ? _networkWidth : 24;
        int? selectedIndex = LoraList.SelectedItem is int i && i >= 0 ? i : null;
        _loraItems.Clear();
        if (EmbeddingsShown)
        {
            var selected = selectedIndex is { } s && s < _shownEmbeddings.Count ? _shownEmbeddings[s].File : null;
            _shownEmbeddings.Clear();
            _shownEmbeddings.AddRange((_allEmbeddings ?? []).Where(c => c.Matches(LoraSearch.Text)));
            foreach (var row in NetworkRows.Embeddings(_shownEmbeddings, width)) _loraItems.Add(row);
            if (_allEmbeddings is null) _loraItems.Add(EmbeddingsPending);
            else if (_allEmbeddings.Count == 0) _loraItems.Add("(no embeddings: --embeddings-dir or --webui-dir)");
            Reselect(selected is null ? -1 : _shownEmbeddings.FindIndex(c => c.File == selected), _loraItems.Count);
        }
        else
        {
            var selected = selectedIndex is { } s && s < _shownLoras.Count ? _shownLoras[s].Alias : null;
            _shownLoras.Clear();
            _shownLoras.AddRange(_allLoras.Where(c => c.Matches(LoraSearch.Text)));
            foreach (var row in NetworkRows.Loras(_shownLoras, _checkpointFamily(), width)) _loraItems.Add(row);
            Reselect(selected is null ? -1 : _shownLoras.FindIndex(c => c.Alias == selected), _shownLoras.Count);
        }
        ShowSelectedCard();
    }

    private (LoraCard? Card, BaseFamily Family, string? Text)? _cardShown;

    /// <summary>Shows the selected row's card (a LoRA's facts and preview, an embedding's details).</summary>
    private void ShowSelectedCard()
    {
        var i = LoraList.SelectedItem is int s && s >= 0 ? s : -1;
        if (EmbeddingsShown)
        {
            var text = SelectedNetworkDetails ?? (_loraItems.Count > 0 ? _loraItems[0] : "no embedding selected");
            if (_cardShown is { Card: null } shown && shown.Text == text) return;
            _cardShown = (null, BaseFamily.Unknown, text);
            Card.ShowText(text);
            return;
        }
        var card = i >= 0 && i < _shownLoras.Count ? _shownLoras[i] : null;
        var family = _checkpointFamily();
        // Moving focus or filtering without changing the row must not restart the card (or its preview).
        if (_cardShown is { } last && last.Card == card && last.Family == family && last.Text is null) return;
        _cardShown = (card, family, null);
        if (card is null) Card.ShowText(_allLoras.Count == 0 ? "no LoRAs found (--lora-dir or --webui-dir)" : LoraCardModel.NothingSelected);
        else Card.Show(card, family);
    }

    private void Reselect(int k, int count)
    {
        if (k >= 0) LoraList.SelectedItem = k;
        else if (count > 0) LoraList.SelectedItem = 0;
    }

    private int _planWidth;
    private int _shownImages = -1;
    private readonly List<HistoryItem> _history = [];

    /// <summary>
    /// The folder the history is read from: the output folder's parent when the output folder is A1111's dated
    /// sub-folder (so earlier days are listed), else the output folder itself.
    /// </summary>
    public string HistoryRoot =>
        DateOnly.TryParseExact(Path.GetFileName(_vm.OutputDir.TrimEnd('/', '\\')), "yyyy-MM-dd", out _)
            ? Path.GetDirectoryName(_vm.OutputDir.TrimEnd('/', '\\'))! : _vm.OutputDir;

    /// <summary>Every parameter of the selected history row, or null when none is selected.</summary>
    public string? SelectedHistoryDetails =>
        FileList.SelectedItem is int i && i >= 0 && i < _history.Count ? _history[i].Details : null;

    /// <summary>The history items shown, newest first.</summary>
    public IReadOnlyList<HistoryItem> HistoryItems => _history;

    /// <summary>Reads the history again from the output folders.</summary>
    public void ReloadHistory()
    {
        _history.Clear();
        _history.AddRange(History.Scan(HistoryRoot));
        _fileItems.Clear();
        foreach (var item in _history) _fileItems.Add(item.ToString());
    }

    /// <summary>Shows the selected history row: its picture and infotext in the image panel, its parameters on the status line.</summary>
    public void ShowSelectedHistory()
    {
        if (FileList.SelectedItem is not int i || i < 0 || i >= _history.Count) return;
        var item = _history[i];
        _vm.Preview.ShowFile(item.Path, item.Info.Format());
        Status.Text = item.Details.Replace('\n', ' ');
    }

    /// <summary>A1111's "send to txt2img" for the selected history row: prompt and settings go into the form.</summary>
    public void ReuseSelected()
    {
        if (FileList.SelectedItem is not int i || i < 0 || i >= _history.Count) return;
        var item = _history[i];
        History.Reuse(_vm, item.Info);
        PromptEditor.Text = _vm.Prompt;
        NegativeField.Text = _vm.NegativePrompt;
        StepsField.Text = _vm.StepsText;
        CfgField.Text = _vm.CfgText;
        SeedField.Text = _vm.SeedText;
        SizeField.Text = _vm.SizeText;
        SamplerField.Select(_vm.Sampler);
        ScheduleField.Select(_vm.Schedule);
        ClipSkipField.Text = _vm.ClipSkipText;
        BatchSizeField.Text = _vm.BatchSizeText;
        HiresField.Select(_vm.HiresUpscaler);
        HiresScaleField.Text = _vm.HiresScaleText;
        HiresStepsField.Text = _vm.HiresStepsText;
        HiresDenoiseField.Text = _vm.HiresDenoiseText;
        Status.Text = "reused " + item.Details.Replace('\n', ' ');
        RefreshPlan();
    }

    private void RefreshPlan()
    {
        // Before the first layout the viewport is empty; 80 columns is the smallest terminal the layout targets.
        var width = PlanView.Viewport.Width > 0 ? PlanView.Viewport.Width : 80;
        _planWidth = PlanView.Viewport.Width;
        PlanView.Text = _vm.PlanText(Math.Max(12, width * 2 / 3), width);
        PromptFrame.Title = $"Prompt  {_vm.TokenText}";
    }

    private JobState _shownState = JobState.Idle;

    private void RefreshJob()
    {
        GenerateButton.Enabled = _vm.State == JobState.Idle;
        CancelButton.Enabled = _vm.State == JobState.Running;
        Progress.Fraction = (float)_vm.ProgressFraction;
        Status.Text = $"[{_vm.State.ToString().ToLowerInvariant()}] {_vm.StatusText}";
        if (_shownImages != _vm.Images.Count) { _shownImages = _vm.Images.Count; ReloadHistory(); }
        // A finished job may have created the demo model and its LoRAs: list them.
        if (_shownState != JobState.Idle && _vm.State == JobState.Idle) { ReloadLoras(rescan: true); RefreshPlan(); }
        _shownState = _vm.State;
    }
}
