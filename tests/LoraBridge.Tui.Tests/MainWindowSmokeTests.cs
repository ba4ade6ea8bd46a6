using System.Drawing;
using LoraBridge.Engine;
using Terminal.Gui.Input;

namespace LoraBridge.Tui.Tests;

// Builds the real window without a driver or main loop (no terminal needed): views are plain objects until run.
// Rendering and key dispatch through IApplication are not exercised here; they were checked by hand under tmux.
#pragma warning disable CS0618 // TextView: see MainWindow
public class MainWindowSmokeTests
{
    private static (MainWindow Window, GeneratorViewModel Vm, List<bool> Rescans) Build(Generator? generator = null)
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        var rescans = new List<bool>();
        var window = new MainWindow(vm, generator ?? ((_, _, _) => Task.FromResult(new JobResult([], []))),
            rescan => { rescans.Add(rescan); return ["demo_style", "demo_subject"]; }, a => a());
        // Give the views a size, as a terminal would (the editor clamps its cursor to what it can lay out).
        window.Frame = new Rectangle(0, 0, 160, 48);
        window.Layout();
        return (window, vm, rescans);
    }

    [Fact]
    public void WindowShowsFieldsLorasAndPlan()
    {
        var (w, _, rescans) = Build();
        using var _ = w;
        Assert.Equal("4", w.StepsField.Text);
        Assert.Equal("64x64", w.SizeField.Text);
        Assert.Equal("Euler a", w.SamplerField.Text);
        Assert.Equal(2, w.LoraList.Source!.Count);
        Assert.Equal([false], rescans);
        Assert.StartsWith("base: 4 steps, 1 part, no LoRA", w.PlanView.Text);
        Assert.Contains("[idle] ready", w.Status.Text);
        Assert.False(w.CancelButton.Enabled);
    }

    [Fact]
    public void EditingPromptAndStepsRerendersThePlan()
    {
        var (w, vm, _) = Build();
        using var _ = w;
        w.PromptEditor.Text = "a [b:c:0.5]";
        Assert.Equal("a [b:c:0.5]", vm.Prompt);
        Assert.Contains("0-2  \"a b\"", w.PlanView.Text);
        w.StepsField.Text = "10";
        Assert.Equal("10", vm.StepsText);
        Assert.Contains("0-5  \"a b\"", w.PlanView.Text);
        Assert.Contains("6-9  \"a c\"", w.PlanView.Text);
        w.PromptEditor.Text = "(a:1.2.3)";
        Assert.StartsWith("error: prompt line 1, column ", w.PlanView.Text);
    }

    [Fact]
    public void EnterOnLoraInsertsAtCursor()
    {
        var (w, vm, _) = Build();
        using var _ = w;
        w.PromptEditor.Text = "a cat\nin the rain";
        w.PromptEditor.InsertionPoint = new Point(2, 1);   // line 2, after "in"
        w.LoraList.SelectedItem = 1;
        w.InsertSelectedLora();
        Assert.Equal("a cat\nin <lora:demo_subject:1> the rain", w.PromptEditor.Text);
        Assert.Equal(w.PromptEditor.Text, vm.Prompt);
        Assert.Equal(new Point(24, 1), w.PromptEditor.InsertionPoint);   // just after the tag
        Assert.Contains("demo_subject 1/1", w.PlanView.Text);
    }

    [Fact]
    public async Task KeysGenerateAndCancel()
    {
        var running = new TaskCompletionSource();
        var (w, vm, rescans) = Build(async (_, _, ct) =>
        {
            running.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return new JobResult([], []);
        });
        using var _ = w;
        var quit = 0;
        Assert.True(w.HandleKey(Key.G.WithCtrl, () => quit++));
        await running.Task;
        Assert.Equal(JobState.Running, vm.State);
        Assert.False(w.GenerateButton.Enabled);
        Assert.True(w.CancelButton.Enabled);
        Assert.True(w.HandleKey(Key.Esc, () => quit++));
        // The window reacts after the state changes (rescan last): wait for the rescan, not only the state.
        Assert.True(SpinWait.SpinUntil(() => vm.State == JobState.Idle && rescans.Count == 2, TimeSpan.FromSeconds(10)));
        Assert.True(w.GenerateButton.Enabled);
        Assert.Contains("cancelled", w.Status.Text);
        Assert.Equal([false, true], rescans);   // the LoRA folders are rescanned after a job
        Assert.False(w.HandleKey(Key.A, () => quit++));
        Assert.True(w.HandleKey(Key.Q.WithCtrl, () => quit++));
        Assert.Equal(1, quit);
    }
}
