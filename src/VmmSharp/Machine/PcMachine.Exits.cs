using VmmSharp.Dispatch;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <content>The handlers of the VM exits the PC machine takes: port I/O to the bus, open-bus MMIO, and the ways a run ends.</content>
public sealed partial class PcMachine
{
    // The hot path: no allocation, no state transfer beyond the exit itself.
    private void OnIo(VcpuState state)
    {
        IoExit io = state.Io;
        Span<byte> data = io.Data;
        int size = io.Size;
        ushort port = io.Port;
        if (io.IsWrite)
        {
            for (int offset = 0; offset < data.Length; offset += size)
            {
                IoBus.Write(port, data.Slice(offset, size));
            }
        }
        else
        {
            for (int offset = 0; offset < data.Length; offset += size)
            {
                IoBus.Read(port, data.Slice(offset, size));
            }
        }
        if (Volatile.Read(ref _stop) is { } stop)
        {
            state.Stop(stop.Status, stop.Reason);
        }
    }

    private void OnMmio(VcpuState state)
    {
        MmioExit mmio = state.Mmio;
        bool handled = mmio.IsWrite ? MmioBus.Write(mmio.Address, mmio.Data) : MmioBus.Read(mmio.Address, mmio.Data);
        if (!handled)
        {
            LogUnhandledMmio(_logger, mmio.IsWrite ? "write" : "read", mmio.Length, mmio.Address);
        }
    }

    private void OnShutdown(VcpuState state)
    {
        string reason = $"guest triple-faulted at RIP 0x{state.Rip:x} on vCPU {state.Id.Value} " +
            $"({FaultReport.Describe(state.Vcpu, _vm.Memory)}): an exception it could not handle, e.g. with no IDT loaded";
        Fail(state, reason);
    }

    private void OnInternalError(VcpuState state)
    {
        InternalErrorExit error = state.InternalError;
        string kind = error.Suberror switch
        {
            1 => "emulation failure: KVM cannot run this instruction",
            2 => "double fault while delivering an event",
            3 => "event delivery failed",
            4 => "unexpected exit",
            _ => "unknown suberror",
        };
        string reason = $"KVM internal error on vCPU {state.Id.Value} (suberror {error.Suberror}, {kind}) at " +
            FaultReport.Describe(state.Vcpu, _vm.Memory, error.InstructionBytes);
        if (HostVirtualization.Kind == HostVirtualizationKind.Pvm)
        {
            reason += "; this host's KVM is PVM, whose emulator runs guest kernel code and lacks some instructions";
        }
        Fail(state, reason);
    }

    private void OnEntryFailure(VcpuState state)
    {
        EntryFailureExit failure = state.EntryFailure;
        Fail(state, $"KVM could not enter the guest on vCPU {state.Id.Value}: hardware reason 0x{failure.HardwareReason:x} on host CPU {failure.Cpu}");
    }

    private void OnSystemEvent(VcpuState state)
    {
        uint type = state.SystemEvent.Type;
        switch (type)
        {
            case 1: // KVM_SYSTEM_EVENT_SHUTDOWN
                SetStop(MachineOutcome.Shutdown, 0, "guest shut down");
                break;
            case 2: // KVM_SYSTEM_EVENT_RESET
                OnGuestReset();
                break;
            case 3: // KVM_SYSTEM_EVENT_CRASH
                SetStop(MachineOutcome.Failed, MachineResult.FailureStatus, $"guest reported a crash (vCPU {state.Id.Value})");
                break;
            default:
                SetStop(MachineOutcome.Failed, MachineResult.FailureStatus, $"guest raised system event {type} (vCPU {state.Id.Value})");
                break;
        }
        StopRequest stop = Volatile.Read(ref _stop)!;
        state.Stop(stop.Status, stop.Reason);
    }

    private void Fail(VcpuState state, string reason)
    {
        SetStop(MachineOutcome.Failed, MachineResult.FailureStatus, reason);
        state.Stop(MachineResult.FailureStatus, reason);
    }
}
