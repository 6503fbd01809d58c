namespace VmmSharp.Fuzz;

/// <summary>Runs saved inputs through a target without afl-fuzz, to reproduce and debug a finding.</summary>
internal static class Replay
{
    /// <summary>How long one input may run before it counts as a hang (afl-fuzz's limit in scripts/fuzz.sh is shorter).</summary>
    private static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Inputs of past findings are named so; every other file in a corpus is a seed, which must be accepted.</summary>
    private const string FindingPrefix = "found-";

    /// <returns>
    /// 0 when every input ran cleanly, 1 on a crash, 2 on a hang (reported at once; the run stops there), 3 when a seed
    /// was refused (a seed the code under test no longer accepts teaches the fuzzer nothing past the refusal).
    /// </returns>
    public static int Files(IFuzzTarget target, IEnumerable<string> paths)
    {
        int status = 0;
        int count = 0;
        Rejection.Verbose = true;
        foreach (string path in paths.SelectMany(Expand))
        {
            byte[] input = File.ReadAllBytes(path);
            Rejection.Reset();
            Console.Error.WriteLine(path);
            count++;
            Exception? failure = null;
            var run = new Thread(() =>
            {
                try
                {
                    target.Run(input);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            })
            { IsBackground = true };
            run.Start();
            if (!run.Join(HangTimeout))
            {
                Console.Error.WriteLine($"{path}: hang: {target.Name} did not return within {HangTimeout.TotalSeconds} s");
                return 2;
            }
            if (failure is not null)
            {
                Console.Error.WriteLine($"{path}: crash: {failure}");
                status = 1;
            }
            else if (Rejection.Count > 0 && !Path.GetFileName(path).StartsWith(FindingPrefix, StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"{path}: seed refused (see above): fix it in {target.GetType().Name}.Seeds() and write the corpus again");
                status = status == 0 ? 3 : status;
            }
        }
        Console.WriteLine($"{target.Name}: {count} input(s) replayed, {status switch { 0 => "no crash", 3 => "a seed refused", _ => "crashes above" }}");
        return status;
    }

    private static IEnumerable<string> Expand(string path) =>
        Directory.Exists(path)
            ? Directory.EnumerateFiles(path).Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            : [path];
}
