import Foundation
import Kiln

/// Every kernel launch of one training step of a model on an OpenCL device (`--profile`): what a GPU
/// sees. A GPU wants few launches, each with thousands of work-items in hundreds of work-groups; a
/// launch with fewer work-groups than the GPU has compute units leaves most of it idle.
struct LaunchProfile: Encodable {
    var model: String
    var device: String
    var batchSize: Int
    /// The threshold below which a launch counts as small (`--min-groups`).
    var minGroups: Int
    var launches: [KernelLaunch]

    /// Tensors at least this large should never run in a small launch.
    static let largeTensor = 65_536

    var clblastLaunches: Int { launches.filter { $0.routine != nil }.count }
    /// Launches below `minGroups` work-groups (driver-chosen work-group sizes count as one group per 64 items).
    var small: [KernelLaunch] { launches.filter { groups($0) < minGroups } }
    var smallOnLargeTensors: [KernelLaunch] { small.filter { $0.elements >= Self.largeTensor } }

    func groups(_ launch: KernelLaunch) -> Int { launch.workGroups ?? (launch.workItems + 63) / 64 }

    enum CodingKeys: String, CodingKey {
        case model, device, launches
        case batchSize = "batch_size", minGroups = "min_groups"
    }
}

/// One training step of `spec` (gather, forward, loss, backward, update) on `device` with its launches cut
/// for a GPU (`LaunchShape.gpu`, whatever the device's kind), recorded.
func profileStep(_ spec: ModelSpec, on device: OpenCLDevice, data: Dataset, batchSize: Int, minGroups: Int) throws -> LaunchProfile {
    let shaped = try OpenCLDevice.open(device.info, shape: .gpu)
    var options = TrainingOptions()
    options.batchSize = batchSize
    options.augmentation = nil
    let trainer = try Trainer(model: Model(spec: spec, device: shaped, seed: 1), data: data, options: options)
    try shaped.finish()
    let launches = try LaunchLog.record { try trainer.trainStep(start: 0, count: min(batchSize, trainer.trainCount)) }
    try shaped.finish()
    return LaunchProfile(model: spec.name, device: shaped.summary, batchSize: batchSize, minGroups: minGroups, launches: launches)
}

extension Tables {
    /// Per model and device: the totals, then one row per kernel (and CLBlast call) in launch order.
    static func launches(_ profiles: [LaunchProfile]) -> String {
        var lines: [String] = []
        for p in profiles {
            lines += ["", "## \(p.model) on \(p.device): kernel launches per training step (batch \(p.batchSize), cut for a GPU)", "",
                      "\(p.launches.count) launches (\(p.launches.count - p.clblastLaunches) Kiln, \(p.clblastLaunches) CLBlast); "
                      + "\(p.small.count) below \(p.minGroups) work-groups, \(p.smallOnLargeTensors.count) of them on a tensor "
                      + "of ≥ \(LaunchProfile.largeTensor) elements.", "",
                      "| kernel | CLBlast call (M×N×K) | launches | work-groups | work-items | largest tensor | below \(p.minGroups) groups |",
                      "|---|---|---|---|---|---|---|"]
            // Consecutive launches of the same kernel on the same shapes share a row.
            var rows: [(launch: KernelLaunch, count: Int)] = []
            for launch in p.launches {
                if let last = rows.last, last.launch.kernel == launch.kernel, last.launch.routine == launch.routine,
                   last.launch.workItems == launch.workItems, last.launch.elements == launch.elements {
                    rows[rows.count - 1].count += 1
                } else {
                    rows.append((launch, 1))
                }
            }
            for (launch, count) in rows {
                let groups = p.groups(launch)
                let flag = groups >= p.minGroups ? "" : launch.elements >= LaunchProfile.largeTensor ? "**yes, large tensor**" : "yes"
                lines.append("| \(launch.kernel) | \(launch.routine.map { $0.replacingOccurrences(of: "CLBlastSgemm ", with: "") } ?? "") "
                             + "| \(count) | \(launch.workGroups.map(String.init) ?? "driver's") | \(launch.workItems) "
                             + "| \(launch.elements) | \(flag) |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
