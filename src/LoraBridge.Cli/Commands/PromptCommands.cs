using System.CommandLine;
using LoraBridge.Prompting;

namespace LoraBridge.Cli.Commands;

/// <summary><c>lorabridge prompt ...</c>: thin wrappers over <see cref="PromptCli"/>.</summary>
public static class PromptCommands
{
    /// <summary>Builds the <c>prompt</c> command group (currently <c>plan</c>).</summary>
    /// <param name="input">Where <c>--jsonl</c> reads requests (stdin when null).</param>
    /// <param name="output">Where results go (stdout when null).</param>
    public static Command Create(TextReader? input = null, TextWriter? output = null)
    {
        var prompt = new Command("prompt", "A1111 prompt language: per-step plans of texts and LoRA multipliers");
        prompt.Subcommands.Add(CreatePlan(input, output));
        return prompt;
    }

    private static Command CreatePlan(TextReader? input, TextWriter? output)
    {
        var text = new Argument<string?>("prompt") { Description = "The prompt (omit with --jsonl)", Arity = ArgumentArity.ZeroOrOne };
        var steps = new Option<int>("--steps") { Description = "Sampling steps", DefaultValueFactory = _ => 20 };
        var hires = new Option<int?>("--hires-steps") { Description = "Hires-fix steps (adds the hires pass)" };
        var json = new Option<bool>("--json") { Description = "Write the plan as JSON instead of a table" };
        var jsonl = new Option<bool>("--jsonl") { Description = "Read {\"prompt\",\"steps\",\"hires_steps\"} lines from stdin, write A1111 conformance-shaped lines" };
        OptionValidation.Range(steps, 1, LoraBridge.Engine.GenerationLimits.MaxSteps);
        OptionValidation.Range(hires, 1, LoraBridge.Engine.GenerationLimits.MaxSteps);
        var plan = new Command("plan", "Show which text conditions each step and every LoRA's multipliers per step");
        plan.Arguments.Add(text);
        plan.Options.Add(steps);
        plan.Options.Add(hires);
        plan.Options.Add(json);
        plan.Options.Add(jsonl);
        plan.SetAction(parse =>
        {
            var outWriter = output ?? Console.Out;
            if (parse.GetValue(jsonl))
                return PromptCli.PlanJsonl(input ?? Console.In, outWriter);
            var value = parse.GetValue(text);
            if (value is null)
            {
                Console.Error.WriteLine("prompt plan: give a prompt, or --jsonl to read requests from stdin");
                return 2;
            }
            // The table fits the terminal (its text columns wrap); redirected output keeps whole lines.
            int width = output is null && !Console.IsOutputRedirected ? TerminalWidth() : 0;
            int rc = PromptCli.Plan(value, parse.GetValue(steps), parse.GetValue(hires), parse.GetValue(json), outWriter, width);
            // With embedding folders on the command line: which embeddings the texts use and A1111's token count.
            if (rc == 0 && !parse.GetValue(json) && parse.GetValue(CliHost.EmbeddingsDir) is { Length: > 0 })
                rc = EmbeddingCommands.PlanSection(parse, value, parse.GetValue(steps), outWriter);
            return rc;
        });
        return plan;
    }

    private static int TerminalWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
